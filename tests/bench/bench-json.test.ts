/**
 * `swarm bench --json` prints the results as data (every figure with its key,
 * value and unit), for scripts that compare runs, instead of the table.
 */
import { describe, expect, it } from "vitest";
import { runSwarm } from "../helpers/swarm-process.ts";

describe("swarm bench --json", () => {
  it("prints one JSON object with each section's figures", async () => {
    const r = await runSwarm(
      ["bench", "--quick", "--only", "raw", "--no-write", "--json"],
      process.env,
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(r.stdout) as {
      complete: boolean;
      markdown: string | null;
      sections: Array<{ id: string; figures: Array<{ key: string; value: number; unit: string }> }>;
    };
    expect(out).toMatchObject({ complete: true, markdown: null });
    const raw = out.sections.find((s) => s.id === "raw")!;
    const p50 = raw.figures.find((f) => f.key === "raw.rtt.p50")!;
    expect(p50.unit).toBe("ms");
    expect(p50.value).toBeGreaterThan(0);
  }, 150_000);
});
