/**
 * The machine copies only what an input changes (structural sharing) and
 * keeps counts instead of scanning every task: these tests hold it to the
 * same behaviour as a full recount, on states it may never modify.
 */
import { describe, expect, it } from "vitest";
import {
  isFinal,
  replay,
  step,
  taskOf,
  type MissionInput,
  type MissionState,
} from "../../src/orchestrator/mission-machine.ts";
import type { PlanInput } from "../../src/schema/plan.ts";
import type { TaskResult } from "../../src/schema/result.ts";
import {
  MISSION,
  Run,
  T0,
  bad,
  deepFreeze,
  dispatched,
  mission,
  ok,
  plan,
  planned,
  result,
  s,
  started,
  trace,
} from "./mission-fixtures.ts";

describe("mission machine: structural sharing", () => {
  it("shares every part of the state that a step does not change", () => {
    const run = new Run(mission());
    run.feed(planned(plan(Array.from({ length: 50 }, (_, i) => ({ id: `t${i}` })))));
    const before = run.state;
    run.feed(started("t7", 1, s(1)));
    const after = run.state;

    expect(after).not.toBe(before);
    expect(after.plan).toBe(before.plan);
    expect(after.config).toBe(before.config);
    expect(after.taskIndex).toBe(before.taskIndex);
    expect(after.usage).toBe(before.usage);
    expect(after.waves).toBe(before.waves);
    const changed = after.tasks.filter((t, i) => t !== before.tasks[i]).map((t) => t.id);
    expect(changed).toEqual(["t7"]);
    expect(taskOf(after, "t7")!.status).toBe("running");
    expect(taskOf(before, "t7")!.status).toBe("dispatched");
    expect(taskOf(before, "t7")!.attempts[0]!.startedAt).toBeNull();
  });

  it("throws rather than write to a frozen state, so the frozen driver proves no write happens", () => {
    const frozen = deepFreeze(mission());
    expect(() => {
      (frozen as { status: string }).status = "running";
    }).toThrow(TypeError);
    // And the machine steps a frozen state without touching it.
    const r = step(frozen, planned(plan([{ id: "a" }])));
    expect(frozen.status).toBe("planning");
    expect(r.state.status).toBe("running");
  });

  it("dispatches a task when its last dependency succeeds, several in plan order", () => {
    const run = new Run(mission());
    run.feed(
      planned(
        plan(
          [{ id: "a" }, { id: "b" }],
          [
            { id: "c", depends_on: ["a"] },
            { id: "d", depends_on: ["b", "a"] },
            { id: "e", depends_on: ["b"] },
          ],
          [{ id: "f", depends_on: ["a"] }],
        ),
      ),
    );
    expect(dispatched(run.last)).toEqual(["a#1", "b#1"]);
    expect(trace(run.feed(ok("a", 1, s(1))))).toEqual([
      "emit wave_started 2",
      "dispatch c#1",
      "emit wave_started 3",
      "dispatch f#1",
    ]);
    expect(trace(run.feed(bad("b", 1, s(2))))).toEqual(["dispatch b#2"]);
    expect(trace(run.feed(ok("b", 2, s(3))))).toEqual([
      "emit wave_completed 1",
      "dispatch d#1",
      "dispatch e#1",
    ]);
    run.feed(ok("c", 1, s(4)), ok("d", 1, s(5)), ok("f", 1, s(6)));
    expect(run.state.status).toBe("running");
    expect(trace(run.feed(ok("e", 1, s(7))))).toEqual([
      "emit wave_completed 2",
      "finish completed",
      "emit mission_completed",
    ]);
  });

  it("keeps its counts equal to a recount through random missions, and stays plain data", () => {
    const rng = lcg(20250301);
    let finals = 0;
    for (let n = 0; n < 150; n++) {
      const run = new Run(mission({ maxReplans: rng.int(0, 2) }));
      const inputs: MissionInput[] = [planned(randomPlan(rng, "a", []))];
      const fed: MissionInput[] = [];
      let now = T0;
      let revision = 0;
      for (let k = 0; k < 150 && inputs.length > 0; k++) {
        const input = inputs.shift()!;
        fed.push(input);
        const cmds = run.feed(input);
        expectCountsHold(run.state);
        if (isFinal(run.state)) {
          finals++;
          break;
        }
        for (const c of cmds) {
          if (c.kind !== "request_replan") continue;
          const kept = c.results.filter((r) => r.status === "succeeded").map((r) => r.id);
          revision++;
          inputs.push({
            type: "replan_result",
            now,
            plan: randomPlan(rng, `r${revision}_`, kept),
          });
        }
        if (inputs.length > 0) continue;
        now += rng.int(0, 3000);
        const inFlight = run.state.tasks.filter(
          (t) => t.status === "dispatched" || t.status === "running",
        );
        if (inFlight.length === 0 || rng.next() < 0.05) {
          inputs.push({ type: "tick", now: now + rng.int(0, 120_000) });
          continue;
        }
        const t = rng.pick(inFlight);
        const attempt = t.attempts.at(-1)!.attempt;
        if (t.status === "dispatched" && rng.next() < 0.7) {
          inputs.push(started(t.id, attempt, now));
        } else {
          const succeeded = rng.next() < 0.75;
          const r: TaskResult = result(succeeded ? "succeeded" : "failed", attempt, {
            ...(rng.next() < 0.2 ? { retryable: false } : {}),
          });
          inputs.push({ type: "task_result", now, task_id: t.id, attempt, result: r });
        }
      }
      // Plain data: survives JSON; and replay of the same inputs gives the same state.
      expect(JSON.parse(JSON.stringify(run.state))).toEqual(run.state);
      expect(replay(mission({ maxReplans: run.state.config.maxReplans }), fed).state).toEqual(
        run.state,
      );
    }
    expect(finals).toBeGreaterThan(100);
  });
});

/** What the machine keeps counted, recounted from scratch. */
function expectCountsHold(state: MissionState): void {
  const remaining = state.waves.map(() => 0);
  let inFlight = 0;
  let toSucceed = 0;
  state.tasks.forEach((t, i) => {
    expect(state.taskIndex[t.id]).toBe(i);
    if (t.status === "dispatched" || t.status === "running") inFlight++;
    if (!t.inPlan) return;
    if (t.status !== "succeeded") toSucceed++;
    if (t.status !== "succeeded" && t.status !== "failed") remaining[t.wave - 1]!++;
  });
  expect(Object.keys(state.taskIndex)).toHaveLength(state.tasks.length);
  if (state.status === "planning") return;
  expect({ inFlight: state.inFlight, toSucceed: state.toSucceed }).toEqual({ inFlight, toSucceed });
  expect(state.waves.map((w) => w.remaining)).toEqual(remaining);
}

/** 1-4 waves of 1-5 tasks, with random dependencies on earlier ones; may reuse `kept` ids. */
function randomPlan(rng: ReturnType<typeof lcg>, prefix: string, kept: string[]): PlanInput {
  const earlier = [...kept];
  const used = new Set<string>();
  const waves: PlanInput["waves"] = [];
  const count = rng.int(1, 4);
  for (let w = 1; w <= count; w++) {
    const tasks: PlanInput["waves"][number]["tasks"] = [];
    for (let i = rng.int(1, 5); i > 0; i--) {
      const id = kept.length > 0 && rng.next() < 0.3 ? rng.pick(kept) : `${prefix}${w}_${i}`;
      if (used.has(id)) continue;
      used.add(id);
      const deps = earlier.length > 0 && rng.next() < 0.6;
      tasks.push({
        id,
        agent: rng.pick(["builder", "tester"]),
        title: `task ${id}`,
        instructions: `do ${id}`,
        max_attempts: rng.int(1, 3),
        timeout_s: rng.int(5, 30),
        ...(deps ? { depends_on: [...new Set([rng.pick(earlier), rng.pick(earlier)])] } : {}),
      });
    }
    if (tasks.length === 0) continue;
    waves.push({ wave: waves.length + 1, tasks });
    earlier.push(...tasks.map((t) => t.id));
  }
  return { strategy: `test ${MISSION}`, waves };
}

/** A small seeded generator, so a failure reproduces. */
function lcg(seed: number) {
  let x = seed;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
