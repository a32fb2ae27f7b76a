/**
 * The replica's answer to JetStream for every attempt outcome, on a middle
 * delivery and on the last one (pure: src/workers/delivery-policy.ts).
 */
import { describe, expect, it } from "vitest";
import {
  decideDelivery,
  type AttemptOutcome,
  type DeliveryDecision,
  type DeliveryInfo,
} from "../../src/workers/delivery-policy.ts";

// The backoff's jitter at its top: the delays below are the ceilings.
const tuning = {
  leaseMs: 15_000,
  modelRetryBaseMs: 2_000,
  maxModelRetryMs: 30_000,
  random: () => 1,
};
const first: DeliveryInfo = { deliveryCount: 1, isLastDelivery: false };
const third: DeliveryInfo = { deliveryCount: 3, isLastDelivery: false };
const last: DeliveryInfo = { deliveryCount: 5, isLastDelivery: true };

/** A decision without its log text, for each kind of reply. */
type Expected = DeliveryDecision extends infer D
  ? D extends DeliveryDecision
    ? Omit<D, "why">
    : never
  : never;
type Row = [string, AttemptOutcome, DeliveryInfo, Expected];

const rows: Row[] = [
  ["a mission that ended is dropped", { kind: "mission_ended" }, first, { reply: "ack" }],
  ["…even on the last delivery", { kind: "mission_ended" }, last, { reply: "ack" }],
  ["a claim marked done is a duplicate: dropped", { kind: "claim_done" }, first, { reply: "ack" }],
  [
    "a claim held by a live replica: nak until its lease lapses (plus a margin)",
    { kind: "claim_held", expiresInMs: 4_000, waitedOut: false },
    first,
    { reply: "nak", delayMs: 4_250, releaseClaim: false },
  ],
  [
    "a held claim about to lapse: nak at least 500 ms",
    { kind: "claim_held", expiresInMs: -1_000, waitedOut: false },
    third,
    { reply: "nak", delayMs: 500, releaseClaim: false },
  ],
  [
    "a held claim on the last delivery: wait here (a nak would strand it), at most a lease",
    { kind: "claim_held", expiresInMs: 40_000, waitedOut: false },
    last,
    { reply: "wait", delayMs: 15_000 },
  ],
  [
    "a held claim on the last delivery, still renewed after two leases: the holder reports; ack",
    { kind: "claim_held", expiresInMs: 4_000, waitedOut: true },
    last,
    { reply: "ack" },
  ],
  [
    "model unavailable on the first delivery: give the claim up, nak after the base delay",
    { kind: "model_unavailable" },
    first,
    { reply: "nak", delayMs: 2_000, releaseClaim: true },
  ],
  [
    "model unavailable on the third delivery: the delay doubled twice",
    { kind: "model_unavailable" },
    third,
    { reply: "nak", delayMs: 8_000, releaseClaim: true },
  ],
  [
    "model unavailable on a late delivery: the delay is capped",
    { kind: "model_unavailable" },
    { deliveryCount: 9, isLastDelivery: false },
    { reply: "nak", delayMs: 30_000, releaseClaim: true },
  ],
  [
    "model unavailable on the last delivery: report a final failure",
    { kind: "model_unavailable" },
    last,
    { reply: "report", retryable: false },
  ],
  [
    "claim lost to another replica: nak a lease later, the claim is not ours to release",
    { kind: "claim_lost" },
    first,
    { reply: "nak", delayMs: 15_000, releaseClaim: false },
  ],
  [
    "drained: give the claim up and hand back in a second",
    { kind: "drained" },
    third,
    { reply: "nak", delayMs: 1_000, releaseClaim: true },
  ],
  [
    "drained on the last delivery: report it as retryable, so the orchestrator re-dispatches",
    { kind: "drained" },
    last,
    { reply: "report", retryable: true },
  ],
  ["a finished attempt is reported", { kind: "finished" }, first, { reply: "report" }],
  ["…on the last delivery too", { kind: "finished" }, last, { reply: "report" }],
];

describe("delivery policy", () => {
  it.each(rows)("%s", (_name, outcome, delivery, expected) => {
    const { why, ...decision } = decideDelivery(outcome, delivery, tuning);
    expect(decision).toEqual(expected);
    expect(why.length).toBeGreaterThan(0);
  });

  it("spreads a model outage's naks below the ceiling (full jitter)", () => {
    const at = (random: number) =>
      decideDelivery({ kind: "model_unavailable" }, third, { ...tuning, random: () => random });
    expect(at(0)).toMatchObject({ reply: "nak", delayMs: 0 });
    expect(at(0.25)).toMatchObject({ reply: "nak", delayMs: 2_000 });
    expect(at(0.999)).toMatchObject({ reply: "nak", delayMs: 7_992 });
  });

  it("never naks the last delivery, whatever happened", () => {
    const outcomes: AttemptOutcome[] = [
      { kind: "mission_ended" },
      { kind: "claim_done" },
      { kind: "claim_held", expiresInMs: 1, waitedOut: false },
      { kind: "claim_held", expiresInMs: 1, waitedOut: true },
      { kind: "model_unavailable" },
      { kind: "drained" },
      { kind: "finished" },
    ];
    for (const o of outcomes) expect(decideDelivery(o, last, tuning).reply).not.toBe("nak");
  });
});
