import { describe, expect, it } from "vitest";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { callDelayMs } from "../../src/bench/fake-model-server.ts";
import {
  BENCH_AGENT,
  briefText,
  criticalPathMs,
  dagPlan,
  makespanDag,
  modelWidePlan,
  noopChainPlan,
  noopWidePlan,
  waveBarrierMs,
  widestWave,
  type DagTask,
} from "../../src/bench/plans.ts";
import { loadRoster } from "../../src/workers/roster.ts";

const task = (id: string, wave: number, dependsOn: string[], lengthMs: number): DagTask => ({
  id,
  wave,
  dependsOn,
  lengthMs,
});

describe("DAG bounds", () => {
  it("critical path is the longest dependency chain, not the longest wave", () => {
    const dag = [
      task("a", 1, [], 10),
      task("b", 1, [], 1),
      task("c", 2, ["a"], 1),
      task("d", 2, ["b"], 10),
    ];
    expect(criticalPathMs(dag)).toBe(11);
    expect(waveBarrierMs(dag)).toBe(20);
    expect(widestWave(dag)).toBe(2);
  });

  it("a join waits for its slowest dependency", () => {
    const dag = [task("a", 1, [], 3), task("b", 1, [], 7), task("j", 2, ["a", "b"], 2)];
    expect(criticalPathMs(dag)).toBe(9);
  });

  it("rejects cycles, unknown dependencies and duplicate ids", () => {
    expect(() => criticalPathMs([task("a", 1, ["b"], 1), task("b", 1, ["a"], 1)])).toThrow(/cycle/);
    expect(() => criticalPathMs([task("a", 1, ["zz"], 1)])).toThrow(/unknown dependency zz/);
    expect(() => criticalPathMs([task("a", 1, [], 1), task("a", 2, [], 1)])).toThrow(/duplicate/);
  });

  it("the makespan DAG separates dependency-driven from wave-barrier scheduling", () => {
    const dag = makespanDag(100);
    expect(criticalPathMs(dag)).toBe(1000);
    expect(waveBarrierMs(dag)).toBe(1600);
  });
});

describe("benchmark briefs go through the real brief parser", () => {
  const knownAgents = async () => (await loadRoster(undefined)).agents.map((a) => a.name);

  it("the default roster has the agent the benchmarks use", async () => {
    expect(await knownAgents()).toContain(BENCH_AGENT);
  });

  it("a no-op chain makes each task depend on the one before", async () => {
    const brief = parseBrief(briefText("chain", noopChainPlan(12)), {
      knownAgents: await knownAgents(),
    });
    const tasks = brief.plan!.waves[0]!.tasks;
    expect(tasks).toHaveLength(12);
    expect(tasks[0]!.depends_on).toEqual([]);
    expect(tasks[11]!.depends_on).toEqual([tasks[10]!.id]);
    expect(tasks.every((t) => t.run?.[0] === "true")).toBe(true);
  });

  it("a wide no-op plan has independent tasks with unique ids", async () => {
    const brief = parseBrief(briefText("wide", noopWidePlan(1000)), {
      knownAgents: await knownAgents(),
    });
    const tasks = brief.plan!.waves[0]!.tasks;
    expect(new Set(tasks.map((t) => t.id)).size).toBe(1000);
    expect(tasks.every((t) => t.depends_on.length === 0)).toBe(true);
  });

  it("`run: []` no-op tasks reach the plan as they are: no instructions, nothing to run", async () => {
    for (const plan of [noopWidePlan(5, "empty"), noopChainPlan(5, "empty")]) {
      const brief = parseBrief(briefText("empty", plan), { knownAgents: await knownAgents() });
      const tasks = brief.plan!.waves[0]!.tasks;
      expect(tasks.map((t) => [t.instructions, t.run])).toEqual(tasks.map(() => ["", []]));
    }
  });

  it("model tasks have instructions and no run steps", () => {
    const brief = parseBrief(briefText("model", modelWidePlan(3)));
    for (const t of brief.plan!.waves[0]!.tasks) {
      expect(t.run).toBeUndefined();
      expect(t.instructions).not.toBe("");
    }
  });

  it("the barrier variant leaves dependencies to the contract's wave default", () => {
    const dag = makespanDag(200);
    const byDeps = parseBrief(briefText("dag", dagPlan(dag, { barrier: false, callsPerTask: 2 })));
    const byWave = parseBrief(briefText("waves", dagPlan(dag, { barrier: true, callsPerTask: 2 })));
    const deps = (b: typeof byDeps, id: string) =>
      b.plan!.waves.flatMap((w) => w.tasks).find((t) => t.id === id)!.depends_on;
    expect(deps(byDeps, "c3")).toEqual(["c2", "d2"]);
    expect([...deps(byWave, "c3")].sort()).toEqual(["a2", "b2", "c2", "d2"]);
    expect(deps(byWave, "a1")).toEqual([]);
  });

  it("each DAG task tells the fake model its per-call delay", () => {
    const dag = makespanDag(200);
    const plan = dagPlan(dag, { barrier: false, callsPerTask: 2 });
    const a1 = plan.waves[0]!.tasks.find((t) => t.id === "a1")!;
    // a1 is 6 units of 200 ms in 2 calls: 600 ms each.
    expect(callDelayMs([{ content: a1.instructions }], 5)).toBe(600);
    expect(callDelayMs([{ content: "no marker" }, { content: 42 }], 5)).toBe(5);
  });
});
