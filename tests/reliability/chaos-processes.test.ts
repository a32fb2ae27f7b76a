/**
 * Quick chaos, processes: small missions through the real launcher (`swarm
 * deploy`) while worker replicas, then the orchestrator, are SIGKILLed.
 * The same scenarios at full size are `scripts/chaos` (docs/reliability.md).
 */
import { describe, expect, it } from "vitest";
import {
  orchestratorKills,
  orchestratorKillsMidMerge,
  workerKills,
} from "../../src/chaos/scenarios.ts";
import { expectNothingLost, SEED } from "./chaos-expect.ts";

describe("chaos: processes killed mid-mission (quick)", () => {
  it("completes a mission while random worker replicas are SIGKILLed, counting duplicates", async () => {
    const row = await workerKills.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.faults).toBeGreaterThanOrEqual(1);
    // The launcher restarted every replica that was killed.
    expect(row.restarts.workers).toBeGreaterThanOrEqual(row.faults);
  }, 240_000);

  it("completes a mission when the orchestrator is SIGKILLed twice", async () => {
    const row = await orchestratorKills.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.faults).toBe(2);
    expect(row.restarts.orchestrator).toBeGreaterThanOrEqual(2);
    // A resumed mission re-dispatches with the same attempt numbers: no task was retried.
    expect(row.account.extraAttempts).toBe(0);
  }, 240_000);

  it("keeps each task's commit on the mission branch exactly once when the orchestrator is SIGKILLed mid-merge", async () => {
    const row = await orchestratorKillsMidMerge.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.faults).toBe(2);
    expect(row.notes.join("\n")).toMatch(/merge queue: \d+ merged, \d+ conflicted; each task once/);
  }, 300_000);
});
