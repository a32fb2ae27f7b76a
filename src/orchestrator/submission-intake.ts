import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, type Consumer, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  buildDlqRecord,
  isTransientNatsError,
  publishDeadLetter,
  type EventGuard,
  type LeaseStore,
} from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decodeEvent, type SquadEvent } from "../schema/index.ts";
import type { MissionBook } from "./mission-book.ts";
import type { MissionRunner } from "./mission-runner.ts";
import type { SubmissionPlanner } from "./submission-planning.ts";

export interface SubmissionIntakeOptions {
  nc: NatsConnection;
  /** The durable on SQUAD_MISSIONS. */
  consumer: Consumer;
  book: MissionBook;
  runners: Map<string, MissionRunner>;
  leases: LeaseStore;
  /** A submission only from an operator (or the orchestrator); a refused one goes to the DLQ. */
  guard: EventGuard;
  instance: string;
  leaseMs: number;
  log: Logger;
  planSubmission: SubmissionPlanner;
  isStopping: () => boolean;
}

/**
 * Intake: submitted missions from SQUAD_MISSIONS, one at a time. A
 * submission that is not a mission_submitted with a mission id, or that the
 * event guard refuses (not signed by an operator), goes to the DLQ; a mission planned already (here or elsewhere) is dropped; otherwise
 * its lease is taken and it is planned, the submission and the lease kept
 * alive while the planner thinks. Resolves when the orchestrator stops.
 */
export async function runSubmissionIntake(opts: SubmissionIntakeOptions): Promise<void> {
  const { consumer, log, isStopping } = opts;
  while (!isStopping()) {
    let m: JsMsg | null;
    try {
      m = await consumer.next({ expires: 2000 });
    } catch (err) {
      if (isStopping()) break;
      if (!isTransientNatsError(err))
        log.warn({ err: errorMessage(err) }, "mission intake pull failed");
      await sleep(500);
      continue;
    }
    if (!m) continue;
    if (isStopping()) {
      m.nak();
      break;
    }
    try {
      await takeSubmission(opts, m);
    } catch (err) {
      log.error({ err: errorMessage(err) }, "submission handling failed; will be redelivered");
      m.nak(2000);
    }
  }
}

async function takeSubmission(opts: SubmissionIntakeOptions, m: JsMsg): Promise<void> {
  const { book, runners, leases, instance, leaseMs, log } = opts;
  let event: SquadEvent;
  try {
    event = decodeEvent(m.data);
    if (event.type !== "mission_submitted")
      throw new Error(`expected mission_submitted, got ${event.type}`);
    if (!event.mission_id) throw new Error("mission_submitted without mission_id");
    const admission = opts.guard.admit(m, event);
    if (!admission.accept) throw new Error(`refused: ${admission.reason}`);
  } catch (err) {
    await publishDeadLetter(
      jetstream(opts.nc),
      buildDlqRecord({
        agent: "orchestrator",
        reason: errorMessage(err),
        subject: m.subject,
        streamSeq: m.seq,
        deliveryCount: m.info.deliveryCount,
        data: m.data,
      }),
    );
    m.term();
    log.warn({ seq: m.seq, err: errorMessage(err) }, "invalid submission sent to the DLQ");
    return;
  }
  const missionId = event.mission_id;
  const mlog = log.child({ mission: missionId });
  // Planned already (here or elsewhere): it runs, or is resumed when its lease lapses.
  if (runners.has(missionId) || book.isFinished(missionId) || book.firstPlan(missionId)) {
    mlog.info("mission already planned; repeated submission dropped");
    m.ack();
    return;
  }
  const lease = await leases.acquire(missionId, instance, leaseMs);
  if (!lease.ok) {
    if (lease.done) {
      mlog.info("mission already ran; repeated submission dropped");
      m.ack();
    } else {
      m.nak(Math.max(1000, lease.expiresAt - Date.now() + 500));
    }
    return;
  }
  // The submission and the lease stay ours while the planner thinks.
  const keepAlive = setInterval(
    () => {
      m.working();
      leases.renew(missionId, instance, leaseMs).catch(() => undefined);
    },
    Math.min(5000, leaseMs / 3),
  );
  try {
    await opts.planSubmission(event, m, mlog);
  } catch (err) {
    if (!runners.has(missionId)) await leases.release(missionId, instance).catch(() => undefined);
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
}
