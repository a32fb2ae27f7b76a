import { describe, expect, it } from "vitest";
import { createMission, step } from "../../src/orchestrator/mission-machine.ts";
import { validatePlan } from "../../src/orchestrator/plan-validation.ts";
import { plan } from "./mission-fixtures.ts";

const agents = ["builder", "tester"];

function problems(p: unknown, opts: Parameters<typeof validatePlan>[1] = { agents }): string[] {
  const r = validatePlan(p, opts);
  if (r.ok) throw new Error("expected the plan to be refused");
  return r.problems;
}

describe("validatePlan", () => {
  it("normalizes: default dependencies on the previous wave, timeouts and attempts", () => {
    const r = validatePlan(
      plan(
        [{ id: "a" }, { id: "b", timeout_s: 30 }],
        [{ id: "c" }, { id: "d", depends_on: ["a"], max_attempts: 1 }],
      ),
      { agents },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const tasks = r.plan.waves.flatMap((w) => w.tasks);
    expect(tasks.map((t) => [t.id, t.depends_on, t.timeout_s, t.max_attempts])).toEqual([
      ["a", [], 600, 3],
      ["b", [], 30, 3],
      ["c", ["a", "b"], 600, 3],
      ["d", ["a"], 600, 1],
    ]);
    // Idempotent: a normalized plan validates to itself.
    expect(validatePlan(r.plan, { agents })).toEqual(r);
  });

  it("accepts `run: []` without instructions (a no-op or checks-only task) and dispatches it as is", () => {
    const r = validatePlan(
      plan([
        { id: "milestone", instructions: "", run: [] },
        { id: "checks", instructions: "", run: [], verify: ["test -f out.txt"] },
      ]),
      { agents },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const planned = step(createMission({ missionId: "m-noop", startedAt: 0, budget: {} }), {
      type: "planned",
      now: 1,
      plan: r.plan,
      revision: 0,
    });
    const dispatched = planned.commands.flatMap((c) => (c.kind === "dispatch" ? [c.task] : []));
    expect(dispatched.map((t) => [t.id, t.run, t.verify])).toEqual([
      ["milestone", [], undefined],
      ["checks", [], ["test -f out.txt"]],
    ]);
  });

  it("refuses unknown agents, naming the task and the agent", () => {
    expect(problems(plan([{ id: "t1", agent: "poet" }]))).toEqual([
      'task t1: unknown agent "poet" (allowed agents: builder, tester)',
    ]);
  });

  it("refuses duplicate ids across waves", () => {
    expect(problems(plan([{ id: "t1" }], [{ id: "t1" }]))).toContain(
      "task t1: duplicate id (used in wave 1 and wave 2)",
    );
  });

  it("refuses waves out of order", () => {
    const p = plan([{ id: "a" }], [{ id: "b" }]);
    p.waves[1]!.wave = 3;
    expect(problems(p)).toEqual([
      "waves must be numbered 1..n in order: the wave at position 2 is numbered 3",
    ]);
  });

  it("refuses unknown dependencies, dependencies on later waves, and self-dependencies", () => {
    const p = plan(
      [
        { id: "t1", depends_on: ["t9"] },
        { id: "t2", depends_on: ["t3"] },
        { id: "t4", depends_on: ["t4"] },
      ],
      [{ id: "t3", depends_on: [] }],
    );
    expect(problems(p)).toEqual([
      "task t1: depends on unknown task t9",
      "task t2 (wave 1): depends on t3 of a later wave (wave 2)",
      "task t4: depends on itself",
    ]);
  });

  it("names a dependency cycle", () => {
    const p = plan([
      { id: "t1", depends_on: ["t2"] },
      { id: "t2", depends_on: ["t3"] },
      { id: "t3", depends_on: ["t1"] },
      { id: "t4", depends_on: [] },
    ]);
    expect(problems(p)).toEqual([
      "dependency cycle: t1 → t2 → t3 → t1 (each task depends on the next)",
    ]);
  });

  it("refuses empty plans and tasks with nothing to do; schema errors name the task", () => {
    expect(problems({ waves: [] })).toEqual(["waves: a plan needs at least one wave"]);
    expect(problems({ waves: [{ wave: 1, tasks: [] }] })).toEqual([
      "wave 1: tasks: a wave needs at least one task",
    ]);
    expect(problems(plan([{ id: "t1", instructions: "" }]))).toEqual([
      "task t1: has neither instructions nor run steps, so there is nothing to do",
    ]);
    const p = plan([{ id: "t1" }]) as { waves: Array<{ tasks: Array<Record<string, unknown>> }> };
    p.waves[0]!.tasks[0]!.verify = "npm test";
    expect(problems(p)[0]).toMatch(/^task t1: verify: /);
    expect(problems(null)[0]).toMatch(/^plan: /);
  });

  it("lets a revision depend on completed tasks it does not list, and keep completed ids", () => {
    const p = plan([
      { id: "a", depends_on: ["zzz"] },
      { id: "new", depends_on: ["done1"] },
    ]);
    expect(validatePlan(p, { agents, completed: ["done1", "a"] }).ok).toBe(true);
    expect(problems(p, { agents, completed: ["done1"] })).toEqual([
      "task a: depends on unknown task zzz",
    ]);
  });

  it("skips the agent check when no agents are given", () => {
    expect(validatePlan(plan([{ id: "a", agent: "anyone" }])).ok).toBe(true);
  });
});
