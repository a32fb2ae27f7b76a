import type { PublishOptions } from "../bus/publisher.ts";
import type { TaskDelivery } from "../bus/task-puller.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent, type SquadEvent, type Step, type TaskResult } from "../schema/index.ts";
import type { ModelCall } from "./model-call.ts";
import type { ReplicaCounters } from "./replica-status.ts";
import {
  DEFAULT_MAX_PAYLOAD,
  fitResult,
  fitStep,
  HEADER_ALLOWANCE,
  jsonBytes,
  oversizedResult,
  payloadBudget,
} from "./result-size.ts";
import { redactSecrets } from "./secret-redaction.ts";

export interface ReportingOptions {
  /** Publishes one task event, scrubbed of the worker's secrets. */
  publishTaskEvent: (event: SquadEvent, opts?: PublishOptions) => Promise<unknown>;
  /** `<agent>/<instance>`. */
  worker: string;
  log: Logger;
  counters: ReplicaCounters;
  secrets: readonly string[];
  /** The server's max_payload (the connection's INFO); absent: nats-server's 1 MiB default. */
  maxPayload?: () => number | undefined;
}

/**
 * The events of one attempt on squad.coordination: task_started,
 * task_progress for every step and task_model_called for every model call
 * (in order, on one queue, all before the result), then
 * task_completed / task_failed. Ids are the attempt's (`<mission>.<task>.<attempt>`),
 * so a result published twice (a takeover while finishing) is stored once.
 * Each is published with the attempt span's context (an event of that span,
 * its traceparent in the headers).
 */
export function attemptReporter(
  opts: ReportingOptions,
  d: TaskDelivery,
  key: string,
  tlog: () => Logger,
) {
  const { worker, log } = opts;
  const traced: PublishOptions = { traceContext: d.traceContext };
  const publishTaskEvent = (event: SquadEvent) => opts.publishTaskEvent(event, traced);
  const task = d.event.payload.task;
  const fields = {
    mission_id: d.event.mission_id,
    task_id: task.id,
    source: worker,
    correlation_id: d.event.id,
  };
  let progress: Promise<unknown> = Promise.resolve();
  const resultEvent = (result: TaskResult) =>
    makeEvent(
      result.status === "succeeded" ? "task_completed" : "task_failed",
      { ...fields, id: `${key}.result` },
      { result },
    );
  /** The result as it fits the server's max_payload (result-size.ts), or the small failure. */
  const sizedResult = (result: TaskResult, maxPayload: number): TaskResult => {
    const eventBytes = jsonBytes(resultEvent(result));
    if (eventBytes + HEADER_ALLOWANCE <= maxPayload) return result;
    const fit = fitResult(result, payloadBudget(maxPayload, eventBytes - jsonBytes(result)));
    if (fit.ok) {
      tlog().warn({ bytes: eventBytes, max_payload: maxPayload }, "result cut to fit max_payload");
      return fit.result;
    }
    tlog().warn({ bytes: eventBytes, max_payload: maxPayload }, "result too large; task failed");
    return oversizedResult(result, fit.bytes, maxPayload);
  };
  const sizedProgress = (step: Step) => {
    const event = makeEvent("task_progress", fields, { attempt: task.attempt, worker, step });
    const maxPayload = opts.maxPayload?.() ?? DEFAULT_MAX_PAYLOAD;
    const eventBytes = jsonBytes(event);
    if (eventBytes + HEADER_ALLOWANCE <= maxPayload) return event;
    const budget = payloadBudget(maxPayload, eventBytes - jsonBytes(step));
    const fitted = fitStep(step, budget) ?? { ...step, args: {}, output: "" };
    return makeEvent("task_progress", fields, { attempt: task.attempt, worker, step: fitted });
  };

  const sizedModelCall = (call: ModelCall) => {
    const event = makeEvent("task_model_called", fields, {
      attempt: task.attempt,
      worker,
      ...call,
    });
    const maxPayload = opts.maxPayload?.() ?? DEFAULT_MAX_PAYLOAD;
    if (jsonBytes(event) + HEADER_ALLOWANCE <= maxPayload) return event;
    // Its text is cut already (model-call.ts): only a server with a tiny max_payload gets here.
    return makeEvent("task_model_called", fields, {
      attempt: task.attempt,
      worker,
      ...call,
      tool_calls: [],
      text: "",
    });
  };
  /**
   * One more event on the attempt's queue: in order, never awaited by the run itself. A build
   * or publish that fails is logged, and the queue (which the result waits for) goes on.
   */
  const enqueue = (what: string, build: () => SquadEvent) => {
    progress = progress
      .then(() => publishTaskEvent(build()))
      .catch((err: unknown) => tlog().warn({ err: errorMessage(err) }, `${what} not published`));
  };

  return {
    started: async (): Promise<void> => {
      await publishTaskEvent(
        makeEvent(
          "task_started",
          { ...fields, id: `${key}.started.${d.deliveryCount}` },
          { attempt: task.attempt, worker, delivery: d.deliveryCount },
        ),
      );
      // The start is on the bus (task_started); a log line per event is a measurable share of a
      // busy replica's CPU, so task lines are debug, bar failures (see "task done").
      if (log.isLevelEnabled("debug"))
        tlog().debug({ title: task.title, delivery: d.deliveryCount }, "task started");
    },
    onStep: (step: Step): void => enqueue("progress", () => sizedProgress(step)),
    onModelCall: (call: ModelCall): void => enqueue("model call", () => sizedModelCall(call)),
    /** Every progress event queued so far is out. */
    flushed: (): Promise<unknown> => progress,
    result: async (full: TaskResult): Promise<void> => {
      await progress;
      const maxPayload = opts.maxPayload?.() ?? DEFAULT_MAX_PAYLOAD;
      let result = sizedResult(full, maxPayload);
      try {
        await publishTaskEvent(resultEvent(result));
      } catch (err) {
        if (!isOverPayload(err)) throw err;
        // Measured to fit, refused anyway (redaction grew it?): fail now, never redeliver.
        result = oversizedResult(full, jsonBytes(full), maxPayload);
        await publishTaskEvent(resultEvent(result));
      }
      if (result.status === "succeeded") opts.counters.completed++;
      else opts.counters.failed++;
      // A failure is an info line; a success is on the bus (task_completed), in the heartbeat's
      // counts and in the "tasks done" line logged once per heartbeat.
      const level = result.status === "succeeded" ? "debug" : "info";
      if (log.isLevelEnabled(level)) {
        tlog()[level](
          {
            title: task.title,
            delivery: d.deliveryCount,
            status: result.status,
            ms: result.duration_ms,
            error: result.error && redactSecrets(result.error, opts.secrets),
          },
          "task done",
        );
      }
    },
  };
}

export type AttemptReporter = ReturnType<typeof attemptReporter>;

/** nats.js refuses a message over the server's max_payload before sending it. */
function isOverPayload(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (/max_payload/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}
