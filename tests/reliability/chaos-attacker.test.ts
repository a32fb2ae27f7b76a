/**
 * Quick chaos, attacker: while a victim mission runs through the real
 * launcher, a second mission's tasks try host sysctls, /etc/shadow, uid 0,
 * the NATS port, the victim's files, and a fork bomb. Every attack is
 * refused, the bomb fails on the process limit, and the victim loses nothing.
 */
import { describe, expect, it } from "vitest";
import { attacker } from "../../src/chaos/attacker.ts";
import { expectNothingLost, SEED } from "./chaos-expect.ts";

describe("chaos: an attacker mission alongside (quick)", () => {
  it("refuses every attack and the victim mission completes with nothing lost", async () => {
    const row = await attacker.run({ size: "quick", seed: SEED });
    expectNothingLost(row);
    expect(row.problems).toEqual([]);
    expect(row.faults).toBeGreaterThanOrEqual(6);
    expect(row.notes.join("\n")).toMatch(/b-fork: .*process/i);
  }, 300_000);
});
