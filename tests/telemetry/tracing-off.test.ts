/**
 * With no OTEL_* variable, tracing is off: connecting does not start it, a
 * published event carries no trace headers, and the helpers hand back
 * spans that record nothing.
 */
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { contextOf, startAttemptSpan, tracingEnabled } from "../../src/telemetry/index.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { useTaskBus } from "../helpers/task-bus.ts";

for (const name of Object.keys(process.env)) if (name.startsWith("OTEL_")) delete process.env[name];
const bus = useTaskBus();

describe("tracing off", () => {
  it("adds no header and records nothing", async () => {
    expect(tracingEnabled()).toBe(false);
    const sub = bus.nc.subscribe("squad.tasks.quiet", { max: 1 });
    const seen = (async () => {
      for await (const m of sub) return m;
      return undefined;
    })();
    await bus.nc.flush();
    await bus.publisher.publish(taskAssignedEvent("quiet", "t1", { missionId: "m-quiet" }));
    const m = (await seen)!;
    expect(m.headers?.get("Squad-Type")).toBe("task_assigned");
    expect(m.headers?.has("traceparent")).toBe(false);
    expect(contextOf(m)).toBe(ROOT_CONTEXT);
    const attempt = startAttemptSpan({
      mission_id: "m-quiet",
      task: { id: "t1", agent: "quiet", attempt: 1 },
    });
    expect(attempt.span.isRecording()).toBe(false);
    expect(trace.getSpan(attempt.context)).toBeUndefined();
  });
});
