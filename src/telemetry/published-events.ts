/**
 * What a process learns from the events it publishes itself: a replica's
 * task_completed / task_failed are its finished attempts (tasks, duration,
 * tokens; the attempt span's outcome), the orchestrator's task_assigned and
 * final mission events are its dispatches and missions. The publisher calls
 * this after each successful publish, so the counts need no call in the
 * workers or the orchestrator, and count each event once however it is
 * retried (a duplicate JetStream dropped is not counted). `traceContext`:
 * the attempt's, when the worker published with it (publisher.ts).
 */
import type { Context } from "@opentelemetry/api";
import type { SquadEvent } from "../schema/index.ts";
import { metrics } from "./metrics.ts";
import { noteAttemptOutcome } from "./spans.ts";

export function notePublished(event: SquadEvent, traceContext?: Context): void {
  switch (event.type) {
    case "task_completed":
    case "task_failed": {
      const r = event.payload.result;
      const agent = agentOf(event.source, r.worker);
      metrics.taskFinished(agent, r.status, r.duration_ms);
      if (r.usage.model) {
        metrics.modelTokens(agent, r.usage.model, r.usage.input_tokens, r.usage.output_tokens);
      }
      noteAttemptOutcome(r.status, r.error, traceContext);
      return;
    }
    case "task_assigned":
      metrics.taskDispatched(event.payload.task.agent);
      return;
    case "mission_completed":
      metrics.missionFinished("completed");
      return;
    case "mission_failed":
      metrics.missionFinished("failed");
      return;
    case "mission_cancelled":
      if (event.source === "orchestrator") metrics.missionFinished("cancelled");
      return;
    default:
      return;
  }
}

/** `<agent>/<instance>` → `<agent>`. */
function agentOf(source: string, worker: string): string {
  const from = source.includes("/") ? source : worker;
  return from.split("/")[0] || from;
}
