/**
 * Quick chaos, inputs: a mission against a model server that fails 30% of
 * its calls, and a mission running through a flood of bad input on every
 * subject a client can write to. Both through the real launcher.
 */
import { describe, expect, it } from "vitest";
import type { BadInputFindings } from "../../src/chaos/bad-input.ts";
import { badInput, modelFaults } from "../../src/chaos/scenarios.ts";
import { expectNothingLost, SEED } from "./chaos-expect.ts";

describe("chaos: bad model answers and bad input (quick)", () => {
  it("retries a failing model server with bounds: the mission completes or fails with reasons", async () => {
    const row = await modelFaults.run({ size: "quick", seed: SEED });
    const where = row.dir ? ` (logs kept in ${row.dir})` : "";
    expect(row.problems, `problems${where}`).toEqual([]);
    const a = row.account;
    expect(a.lost).toBe(0);
    expect(a.unexplainedExecutions).toBe(0);
    const d = row.details as { maxCallsPerTask: number; bound: number; model: { calls: number } };
    expect(row.faults).toBeGreaterThan(0);
    expect(d.maxCallsPerTask).toBeLessThanOrEqual(d.bound);
    if (a.status === "completed") {
      expect(a.succeeded).toBe(a.tasks);
    } else {
      // Failed, with a reason for the mission and for each failed task.
      expect(a.status).toBe("failed");
      expect(a.reason).toBeTruthy();
      for (const f of a.failures) expect(f.error).toBeTruthy();
    }
  }, 300_000);

  it("dead-letters, refuses or skips every bad message while the mission completes, with no crash", async () => {
    const row = await badInput.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    const f = (row.details as { findings: BadInputFindings }).findings;
    expect(f.published).toBeGreaterThan(100);
    expect(f.missingFromDlq).toEqual([]);
    expect(f.deadLettered).toBe(f.byExpectation.dlq + f.byExpectation.no_consumer);
    expect(f.byExpectation.no_consumer).toBeGreaterThan(0);
    expect(f.wrongOrMissingFailures).toEqual([]);
    expect(f.failedMissions).toBe(f.byExpectation.mission_failed);
    expect(f.refusedAtPublish).toBe(f.byExpectation.too_large);
    expect(f.skippedLogged).toBeGreaterThanOrEqual(f.invalidOnCoordination);
    expect(f.forgedInReport).toEqual([]);
    expect(f.deadProcesses).toEqual([]);
    expect(row.restarts).toEqual({ orchestrator: 0, workers: 0 });
  }, 300_000);
});
