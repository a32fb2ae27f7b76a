import { describe, expect, it } from "vitest";
import {
  mustHandBack,
  nextPhase,
  type LifecycleEvent,
  type ReplicaPhase,
} from "../../src/workers/replica-lifecycle.ts";

const starting: ReplicaPhase = { phase: "starting" };
const online: ReplicaPhase = { phase: "online", since: 1 };
const draining: ReplicaPhase = { phase: "draining", since: 2, reason: "SIGTERM", expired: false };
const expired: ReplicaPhase = { ...draining, expired: true };
const stopped: ReplicaPhase = { phase: "stopped", reason: "SIGTERM" };

const stop: LifecycleEvent = { type: "stop", now: 2, reason: "SIGTERM" };

describe("replica lifecycle", () => {
  it.each<[ReplicaPhase, LifecycleEvent, ReplicaPhase]>([
    [starting, { type: "online", now: 1 }, online],
    [online, stop, draining],
    [starting, stop, draining],
    [draining, { type: "drain_expired" }, expired],
    [draining, { type: "drained" }, stopped],
    [expired, { type: "drained" }, stopped],
    // Events that do not apply leave the phase as it is.
    [online, { type: "online", now: 5 }, online],
    [draining, { type: "stop", now: 9, reason: "again" }, draining],
    [online, { type: "drain_expired" }, online],
    [stopped, stop, stopped],
    [stopped, { type: "online", now: 9 }, stopped],
  ])("%o + %o → %o", (from, event, to) => {
    expect(nextPhase(from, event)).toEqual(to);
  });

  it("hands in-flight attempts back only once the drain time ran out", () => {
    expect([starting, online, draining, expired, stopped].map(mustHandBack)).toEqual([
      false,
      false,
      false,
      true,
      false,
    ]);
  });
});
