import { context } from "@opentelemetry/api";
import { claimKey } from "../bus/leases.ts";
import type { TaskDelivery, TaskHandler } from "../bus/task-puller.ts";
import type { Logger } from "../log.ts";
import { attemptReporter, type ReportingOptions } from "./attempt-reporting.ts";
import { executeAttempt, type Execution, type ExecutionOptions } from "./attempt-execution.ts";
import { decideDelivery, type AttemptOutcome, type DeliveryTuning } from "./delivery-policy.ts";
import type { InFlightTasks } from "./in-flight-tasks.ts";
import type { EndedMissions } from "./mission-ends.ts";
import type { Claims } from "./task-claim.ts";
import { DRAIN_REASON, TIMEOUT_REASON } from "./task-executor.ts";

/** Abort reason when the claim was taken by another replica (our lease lapsed). */
const LEASE_LOST_REASON = "claim lost to another replica";

export interface TaskHandlerOptions {
  log: Logger;
  tuning: DeliveryTuning;
  claims: Claims;
  inFlight: InFlightTasks;
  ended: EndedMissions;
  /** The drain time ran out: an attempt starting now is aborted at once. */
  mustHandBack: () => boolean;
  execution: ExecutionOptions;
  reporting: ReportingOptions;
  /**
   * Signatures are on: the orchestrator takes a result only from the claim's
   * holder, so the claim is confirmed (renewed) right before the result goes out.
   */
  confirmsClaim: () => boolean;
}

/**
 * One delivery of one attempt, start to end: drop it if its mission ended,
 * take its claim, run it (abortable: timeout, mission end, drain, lost
 * claim), then answer JetStream as the delivery policy says and report.
 * Throws on NATS trouble, the claim given up first, so the redelivery the
 * puller asks for can run at once.
 */
export function createTaskHandler(opts: TaskHandlerOptions): TaskHandler {
  const { log, tuning, claims, inFlight, ended } = opts;

  return async function handle(d: TaskDelivery): Promise<void> {
    const task = d.event.payload.task;
    // Never null here: the puller dead-letters a task_assigned without one.
    const mission = d.event.mission_id;
    const key = claimKey(opts.execution.agent.name, mission, task.id, task.attempt);
    /** The attempt's event ids (without the claim key's agent prefix). */
    const attemptId = `${mission}.${task.id}.${task.attempt}`;
    // The task's child logger, made on first use: a task that goes well logs nothing at info.
    let child: Logger | undefined;
    const tlog = (): Logger =>
      (child ??= log.child({ mission, task: task.id, attempt: task.attempt }));
    const endedFor = ended.reason(mission);
    if (endedFor) {
      tlog().info({ reason: endedFor }, decideDelivery({ kind: "mission_ended" }, d, tuning).why);
      await d.ack();
      return;
    }
    const claim = await claims.take(d, key, tlog);
    if (claim === null) return;

    const controller = new AbortController();
    const abort = (reason: string) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    inFlight.add(key, mission, abort);
    if (opts.mustHandBack()) abort(DRAIN_REASON);
    const lateEnd = ended.reason(mission);
    if (lateEnd) abort(lateEnd);
    const timeout = setTimeout(() => abort(TIMEOUT_REASON), task.timeout_s * 1000);
    const stopRenewal = claim.keepRenewed(() => {
      if (controller.signal.aborted) return;
      tlog().warn("claim lost (lease lapsed and taken over); attempt abandoned");
      abort(LEASE_LOST_REASON);
    }, tlog);
    const report = attemptReporter(opts.reporting, d, attemptId, tlog);
    const startedAt = Date.now();
    try {
      await report.started();
      // In the attempt span's context: the spans its commands, tools and model calls start are
      // its children. Only here: the claim, the reports and the ack need no active context.
      const x = await context.with(d.traceContext, () =>
        executeAttempt(opts.execution, d, controller.signal, report, startedAt),
      );
      const outcome = outcomeOf(x, controller.signal.reason, d);
      const decision = decideDelivery(outcome, d, tuning);
      switch (decision.reply) {
        case "nak":
          if (outcome.kind === "model_unavailable")
            tlog().warn(
              { err: (x.error as Error).message, retry_in_ms: decision.delayMs },
              decision.why,
            );
          else if (outcome.kind === "drained") tlog().info(decision.why);
          await report.flushed();
          if (decision.releaseClaim) await claim.release();
          d.nak(decision.delayMs);
          return;
        case "report": {
          // Lost meanwhile (a lapsed lease taken over): the new holder reports; this copy, with
          // the same event id, would shadow its result and be refused.
          if (opts.confirmsClaim() && !(await claim.confirm())) {
            tlog().warn("claim lost before the result went out; the new holder reports");
            await report.flushed();
            d.nak(tuning.leaseMs);
            return;
          }
          const result =
            decision.retryable === undefined
              ? x.result
              : { ...x.result, retryable: decision.retryable };
          await report.result(result);
          // The result is stored: mark the claim done and ack at once (neither waits for the other).
          // Either may be lost in a crash: an ack without a done claim leaves nothing to redeliver,
          // and a done claim without an ack makes the redelivery a dropped duplicate.
          const [done, acked] = await Promise.allSettled([claim.complete(tlog), d.ack()]);
          if (done.status === "rejected") throw done.reason;
          if (acked.status === "rejected") throw acked.reason;
          return;
        }
        case "ack":
        case "wait":
          throw new Error(`no such answer to a run attempt: ${decision.reply} (${decision.why})`);
      }
    } catch (err) {
      await claim.release().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timeout);
      stopRenewal();
      inFlight.delete(key);
    }
  };
}

/** What happened to a run attempt, in the order that decides it. */
function outcomeOf(x: Execution, abortReason: unknown, d: TaskDelivery): AttemptOutcome {
  // Handed back before anything else is looked at, while a redelivery is left to retry it.
  if (x.modelUnavailable && !d.isLastDelivery) return { kind: "model_unavailable" };
  if (abortReason === LEASE_LOST_REASON) return { kind: "claim_lost" };
  if (abortReason === DRAIN_REASON) return { kind: "drained" };
  if (x.modelUnavailable) return { kind: "model_unavailable" };
  return { kind: "finished" };
}
