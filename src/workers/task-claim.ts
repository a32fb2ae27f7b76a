import { setTimeout as sleep } from "node:timers/promises";
import { LeaseLostError, type LeaseStore } from "../bus/leases.ts";
import type { TaskDelivery } from "../bus/task-puller.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decideDelivery, type DeliveryTuning } from "./delivery-policy.ts";

/**
 * The claim of one attempt in KV (`squad_claims`, key
 * `<agent>.<mission>.<task>.<attempt>`, see claimKey): a redelivered or re-published attempt is
 * never worked twice at once. Held by a lease renewed while the attempt runs,
 * so a dead replica's claim lapses; marked done once the result is stored.
 */
export interface Claim {
  /** Renew the lease every leaseMs/3; `onLost` when another replica took it. Returns the stop. */
  keepRenewed(onLost: () => void, tlog: () => Logger): () => void;
  /** Renew it now: true while it is still ours (for a lease period more). */
  confirm(): Promise<boolean>;
  /** Give the claim up, so a redelivery can run at once. */
  release(): Promise<void>;
  /** The result is stored: mark it done (a takeover while finishing is only a log line). */
  complete(tlog: () => Logger): Promise<void>;
}

export interface ClaimsOptions {
  leases: LeaseStore;
  instance: string;
  tuning: DeliveryTuning;
}

export function createClaims(opts: ClaimsOptions) {
  const { leases, instance, tuning } = opts;
  const { leaseMs } = tuning;

  function claimOf(key: string, claimedRevision: number): Claim {
    /** The claim's revision as we last wrote it; unknown once a renewal has rewritten it. */
    let revision: number | undefined = claimedRevision;
    return {
      keepRenewed(onLost, tlog) {
        const renew = setInterval(() => {
          revision = undefined;
          leases.renew(key, instance, leaseMs).then(
            (ok) => {
              if (!ok) onLost();
            },
            (err: unknown) => tlog().warn({ err: errorMessage(err) }, "lease renewal failed"),
          );
        }, leaseMs / 3);
        return () => clearInterval(renew);
      },
      confirm: () => {
        revision = undefined;
        return leases.renew(key, instance, leaseMs);
      },
      release: () => leases.release(key, instance),
      complete: (tlog) =>
        leases
          .complete(key, instance, revision === undefined ? {} : { revision })
          .catch((err: unknown) => {
            if (!(err instanceof LeaseLostError)) throw err;
            // Our lease lapsed and another replica took over; both results carry the same id, so JetStream keeps one.
            tlog().warn(
              { err: err.message },
              "claim taken over while finishing; result published once",
            );
          }),
    };
  }

  return {
    /**
     * Take the attempt's claim, or settle the delivery and answer null.
     * On the last delivery a nak would leave the message in the work queue
     * for good, so a live holder is waited out here (the puller keeps the
     * delivery alive meanwhile).
     */
    async take(d: TaskDelivery, key: string, tlog: () => Logger): Promise<Claim | null> {
      const waitUntil = Date.now() + 2 * leaseMs;
      for (;;) {
        const c = await leases.acquire(key, instance, leaseMs);
        if (c.ok) return claimOf(key, c.revision);
        const decision = decideDelivery(
          c.done
            ? { kind: "claim_done" }
            : {
                kind: "claim_held",
                expiresInMs: c.expiresAt - Date.now(),
                waitedOut: Date.now() >= waitUntil,
              },
          d,
          tuning,
        );
        switch (decision.reply) {
          case "ack":
            tlog().info({ holder: c.holder }, decision.why);
            await d.ack();
            return null;
          case "nak":
            tlog().info({ holder: c.holder, retry_in_ms: decision.delayMs }, decision.why);
            d.nak(decision.delayMs);
            return null;
          case "wait":
            await sleep(decision.delayMs);
            break;
          case "report":
            throw new Error(`a claim is never reported (${decision.why})`);
        }
      }
    },
  };
}

export type Claims = ReturnType<typeof createClaims>;
