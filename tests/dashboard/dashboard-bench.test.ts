/**
 * The dashboard benchmark (src/bench/dashboard.ts) on a small mission: its
 * plan has the shape it says, and a run measures every event it sends, in
 * the browser, with the dashboard's CPU and memory.
 */
import { describe, expect, it } from "vitest";
import {
  dashboardBench,
  dashboardBenchMarkdown,
  dashboardBenchPlan,
} from "../../src/bench/dashboard.ts";
import { Plan } from "../../src/schema/index.ts";

describe("dashboard benchmark", () => {
  it("plans waves of 100 tasks, each on one task of the wave before", () => {
    const plan = Plan.parse(dashboardBenchPlan(250));
    expect(plan.waves.map((w) => w.tasks.length)).toEqual([100, 100, 50]);
    expect(plan.waves[0]!.tasks[0]!.depends_on).toEqual([]);
    expect(plan.waves[2]!.tasks[49]!.depends_on).toEqual(["t150"]);
  });

  it("measures event → page in the browser, and the dashboard's CPU and memory", async () => {
    const f = await dashboardBench({ tasks: 120, samples: 6 });
    expect(f.tasks).toBe(120);
    expect(f.eventToPage.n).toBe(6);
    expect(f.firstRenderMs).toBeGreaterThan(0);
    expect(f.rssMb).toBeGreaterThan(10);
    expect(dashboardBenchMarkdown(f)).toMatch(/event → page, p99 \| \d+ ms/);
  }, 120_000);
});
