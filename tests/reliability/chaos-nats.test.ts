/**
 * Quick chaos, NATS: a mission through the real launcher across a
 * nats-server SIGKILL and restart (same port and store), and on a 3-node
 * cluster (R3 streams and buckets) that loses the node leading SQUAD_TASKS.
 */
import { describe, expect, it } from "vitest";
import { clusterNodeLoss, natsRestart } from "../../src/chaos/scenarios.ts";
import { expectNothingLost, SEED } from "./chaos-expect.ts";

describe("chaos: NATS restarted or a cluster node lost mid-mission (quick)", () => {
  it("completes a mission across a nats-server SIGKILL and restart", async () => {
    const row = await natsRestart.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.faults).toBe(1);
  }, 240_000);

  it("completes a mission on a 3-node cluster when the SQUAD_TASKS leader is SIGKILLed", async () => {
    const row = await clusterNodeLoss.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.faults).toBe(1);
  }, 300_000);
});
