/**
 * What a replica answers JetStream for one delivery of a task attempt, given
 * what happened to the attempt and which delivery it is (pure: the replica
 * acts on the answer; tests/workers/delivery-policy.test.ts is its table).
 *
 * The rule behind every row: a nak on the last delivery (max_deliver) would
 * leave the message in the work queue for good, so the last delivery is
 * never nak'ed: it is reported, waited out or acked instead. A handler that
 * throws (NATS trouble) is the puller's case: nak with backoff, or the DLQ on
 * the last delivery (src/bus/task-puller.ts).
 */
import { backoffDelay } from "../backoff.ts";

export type AttemptOutcome =
  /** The mission ended (cancelled, failed, completed) before the attempt ran. */
  | { kind: "mission_ended" }
  /** The attempt's claim is marked done: it was reported already. */
  | { kind: "claim_done" }
  /**
   * Another replica holds the claim; its lease runs out in `expiresInMs`.
   * `waitedOut`: on the last delivery we waited two lease periods and it is still renewed.
   */
  | { kind: "claim_held"; expiresInMs: number; waitedOut: boolean }
  /** The model server could not be reached; nothing was decided about the task. */
  | { kind: "model_unavailable" }
  /** Our claim lapsed and another replica took it while we ran. */
  | { kind: "claim_lost" }
  /** The replica is stopping and the drain time ran out: the attempt was aborted. */
  | { kind: "drained" }
  /** The attempt ran to a result (succeeded or failed). */
  | { kind: "finished" };

export interface DeliveryInfo {
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** No redelivery will follow this one. */
  isLastDelivery: boolean;
}

export interface DeliveryTuning {
  leaseMs: number;
  /** Ceiling of a model outage's first nak delay; it doubles per delivery up to `maxModelRetryMs` (full jitter below it). */
  modelRetryBaseMs: number;
  maxModelRetryMs: number;
  /** A number in [0, 1) for the backoff's jitter (Math.random() in the replica, fixed in tests). */
  random: () => number;
}

export type DeliveryDecision =
  /** Done with this message (it is gone from the work queue). */
  | { reply: "ack"; why: string }
  /** Offer it again after `delayMs`; `releaseClaim`: give our claim up first, so the redelivery runs at once. */
  | { reply: "nak"; delayMs: number; releaseClaim: boolean; why: string }
  /** Keep the delivery (the puller keeps it alive) and ask for the claim again after `delayMs`. */
  | { reply: "wait"; delayMs: number; why: string }
  /**
   * Publish the result, mark the claim done, ack. `retryable` overrides the
   * result's own flag: false when no delivery is left to retry a model outage,
   * true for an attempt cut short by a drain (the orchestrator re-dispatches it).
   */
  | { reply: "report"; retryable?: boolean; why: string };

export function decideDelivery(
  outcome: AttemptOutcome,
  d: DeliveryInfo,
  t: DeliveryTuning,
): DeliveryDecision {
  switch (outcome.kind) {
    case "mission_ended":
      return { reply: "ack", why: "mission has ended; task dropped" };
    case "claim_done":
      return { reply: "ack", why: "attempt already reported; duplicate delivery dropped" };
    case "claim_held": {
      const wait = Math.max(500, outcome.expiresInMs + 250);
      if (!d.isLastDelivery)
        return {
          reply: "nak",
          delayMs: wait,
          releaseClaim: false,
          why: "attempt held by another replica",
        };
      if (outcome.waitedOut)
        // Still renewed after two lease periods: the holder is alive and will report.
        return { reply: "ack", why: "attempt worked by a live replica; last copy dropped" };
      return {
        reply: "wait",
        delayMs: Math.min(wait, t.leaseMs),
        why: "last delivery: waiting out the holder",
      };
    }
    case "model_unavailable":
      if (d.isLastDelivery)
        return { reply: "report", retryable: false, why: "model unavailable on the last delivery" };
      return {
        reply: "nak",
        delayMs: backoffDelay(d.deliveryCount, t.modelRetryBaseMs, t.maxModelRetryMs, t.random()),
        releaseClaim: true,
        why: "model unavailable; attempt handed back",
      };
    case "claim_lost":
      // Another replica runs this attempt now; the claim decides what the redelivery does.
      return {
        reply: "nak",
        delayMs: t.leaseMs,
        releaseClaim: false,
        why: "claim lost to another replica",
      };
    case "drained":
      if (d.isLastDelivery)
        return { reply: "report", retryable: true, why: "drained on the last delivery" };
      return {
        reply: "nak",
        delayMs: 1000,
        releaseClaim: true,
        why: "replica stopping; attempt handed back",
      };
    case "finished":
      return { reply: "report", why: "attempt finished" };
  }
}
