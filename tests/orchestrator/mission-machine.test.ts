import { describe, expect, it } from "vitest";
import { makeEvent } from "../../src/schema/envelope.ts";
import {
  INPUT_SUMMARY_BYTES,
  INPUTS_TOTAL_BYTES,
  step,
  summarize,
} from "../../src/orchestrator/mission-machine.ts";
import {
  MISSION,
  Run,
  T0,
  bad,
  commandsOf,
  dispatched,
  eventOf,
  mission,
  ok,
  plan,
  planned,
  s,
  started,
  tick,
  trace,
} from "./mission-fixtures.ts";

describe("mission machine: dependency order and parallelism", () => {
  it("dispatches a wave's tasks together, and the next wave only when its dependencies succeeded", () => {
    const run = new Run(mission());
    const p = plan([{ id: "a" }, { id: "b" }], [{ id: "c" }]);
    expect(trace(run.feed(planned(p)))).toEqual([
      "emit wave_started 1",
      "dispatch a#1",
      "dispatch b#1",
    ]);
    expect(trace(run.feed(started("a", 1, s(1)), ok("a", 1, s(2))))).toEqual([]);
    expect(run.task("c").status).toBe("pending");
    expect(trace(run.feed(ok("b", 1, s(3))))).toEqual([
      "emit wave_completed 1",
      "emit wave_started 2",
      "dispatch c#1",
    ]);
    const c = commandsOf(run.last, "dispatch")[0]!;
    expect(c.msg_id).toBe(`${MISSION}.c.1`);
    expect(c.task).toMatchObject({
      id: "c",
      agent: "builder",
      wave: 2,
      depends_on: ["a", "b"],
      inputs: { a: "a done", b: "b done" },
      attempt: 1,
      max_attempts: 3,
      timeout_s: 600,
    });
    // The dispatched task is a valid contract task_assigned payload.
    expect(() =>
      makeEvent(
        "task_assigned",
        { mission_id: MISSION, task_id: "c", source: "orchestrator" },
        { task: c.task },
      ),
    ).not.toThrow();

    expect(trace(run.feed(ok("c", 1, s(10))))).toEqual([
      "emit wave_completed 2",
      "finish completed",
      "emit mission_completed",
    ]);
    expect(run.state.status).toBe("completed");
    const done = commandsOf(run.last, "emit").at(-1)!;
    expect(done.event).toMatchObject({
      type: "mission_completed",
      payload: {
        tasks: { total: 3, succeeded: 3, failed: 0 },
        duration_ms: 10_000,
        usage: { input_tokens: 30, output_tokens: 15 },
        summary: "3 tasks succeeded in 2 waves",
      },
    });
    for (const e of commandsOf(run.all, "emit")) expect(() => eventOf(e)).not.toThrow();
  });

  it("starts a fast branch of wave 2 while an unrelated slow task of wave 1 still runs", () => {
    const run = new Run(mission());
    run.feed(
      planned(
        plan(
          [{ id: "slow" }, { id: "fast" }],
          [{ id: "after_fast", depends_on: ["fast"] }, { id: "after_both" }],
        ),
      ),
    );
    expect(trace(run.feed(ok("fast", 1, s(1))))).toEqual([
      "emit wave_started 2",
      "dispatch after_fast#1",
    ]);
    expect(run.task("slow").status).toBe("dispatched");
    expect(run.state.waves[0]!.completed).toBe(false);
    expect(trace(run.feed(ok("after_fast", 1, s(2))))).toEqual([]);
    expect(trace(run.feed(ok("slow", 1, s(30))))).toEqual([
      "emit wave_completed 1",
      "dispatch after_both#1",
    ]);
  });

  it("dispatches every task whose dependencies are met in one step", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "root" }], [{ id: "x" }, { id: "y" }, { id: "z" }])));
    expect(dispatched(run.feed(ok("root", 1, s(1))))).toEqual(["x#1", "y#1", "z#1"]);
  });

  it("counts usage per agent and per model", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }, { id: "b", agent: "tester" }])));
    run.feed(ok("a", 1, s(1), { tokens: [100, 20] }));
    run.feed(
      ok("b", 1, s(2), {
        tokens: [7, 3],
        usage: { model: null, input_tokens: 7, output_tokens: 3 },
      }),
    );
    expect(run.state.usage).toEqual({
      input_tokens: 107,
      output_tokens: 23,
      byAgent: {
        builder: { input_tokens: 100, output_tokens: 20 },
        tester: { input_tokens: 7, output_tokens: 3 },
      },
      byModel: {
        "ollama:qwen2.5:7b": { input_tokens: 100, output_tokens: 20 },
        none: { input_tokens: 7, output_tokens: 3 },
      },
    });
    const sum = summarize(run.state);
    expect(sum.rows.map((r) => [r.id, r.status, r.attempts, r.duration_ms])).toEqual([
      ["a", "succeeded", 1, 1000],
      ["b", "succeeded", 1, 2000],
    ]);
  });
});

describe("mission machine: retries and timeouts", () => {
  it("retries a failed attempt as a new attempt, up to max_attempts, then fails the mission", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a", max_attempts: 3 }, { id: "b" }])));
    expect(dispatched(run.feed(bad("a", 1, s(1))))).toEqual(["a#2"]);
    const second = commandsOf(run.last, "dispatch")[0]!;
    expect(second.msg_id).toBe(`${MISSION}.a.2`);
    expect(second.task).toMatchObject({ attempt: 2, max_attempts: 3 });
    expect(dispatched(run.feed(bad("a", 2, s(2))))).toEqual(["a#3"]);
    expect(trace(run.feed(bad("a", 3, s(3), { error: "tests fail: 3 failures" })))).toEqual([
      "abort b#1",
      "finish failed",
      "emit mission_failed",
    ]);
    const failedEvent = commandsOf(run.last, "emit")[0]!.event;
    expect(failedEvent).toMatchObject({
      type: "mission_failed",
      payload: {
        reason: "task a failed after 3 attempts: tests fail: 3 failures",
        failed_tasks: [{ id: "a", error: "tests fail: 3 failures" }],
        tasks: { total: 2, succeeded: 0, failed: 1 },
      },
    });
    expect(run.task("b").status).toBe("cancelled");
    expect(run.task("a").attempts.map((a) => a.outcome)).toEqual(["failed", "failed", "failed"]);
  });

  it("does not retry a result marked retryable: false", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }])));
    const cmds = run.feed(bad("a", 1, s(1), { retryable: false, error: "deliveries exhausted" }));
    expect(dispatched(cmds)).toEqual([]);
    expect(run.state.status).toBe("failed");
    expect(run.state.outcome?.reason).toBe("task a failed after 1 attempt: deliveries exhausted");
  });

  it("fails an attempt that no worker starts within the start timeout, and retries it", () => {
    const run = new Run(mission({ startTimeoutS: 60 }));
    run.feed(planned(plan([{ id: "a" }])));
    const before = run.state;
    expect(run.feed(tick(s(59.999)))).toEqual([]);
    expect(run.state).toEqual(before);
    expect(trace(run.feed(tick(s(60))))).toEqual([
      "emit task_failed a#1",
      "abort a#1",
      "dispatch a#2",
    ]);
    const emitted = commandsOf(run.last, "emit")[0]!;
    expect(emitted.id).toBe(`${MISSION}.a.1.timeout`);
    expect(emitted.timestamp).toBe(new Date(s(60)).toISOString());
    const ev = eventOf(emitted);
    expect(ev.type === "task_failed" && ev.payload.result).toMatchObject({
      status: "failed",
      worker: "orchestrator",
      attempt: 1,
    });
    expect(run.task("a").attempts[0]).toMatchObject({ outcome: "timed_out" });
    expect(run.task("a").attempts[0]!.error).toMatch(
      /no worker started attempt 1 within 60 s.*agent "builder"/,
    );
    // The late start of the abandoned attempt changes nothing.
    expect(trace(run.feed(started("a", 1, s(61))))).toEqual(["ignored task_started"]);
    expect(run.task("a").attempts[1]).toMatchObject({ attempt: 2, startedAt: null });
  });

  it("fails an attempt with no result within timeout_s (plus grace) after its start", () => {
    const run = new Run(mission({ resultGraceS: 5 }));
    run.feed(planned(plan([{ id: "a", timeout_s: 10 }])));
    run.feed(started("a", 1, s(1)));
    // A start resets the clock: the start timeout no longer applies.
    expect(run.feed(tick(s(15.9)))).toEqual([]);
    expect(trace(run.feed(tick(s(16))))).toEqual([
      "emit task_failed a#1",
      "abort a#1",
      "dispatch a#2",
    ]);
    expect(run.task("a").attempts[0]!.error).toMatch(
      /sent no result within 10 s of its start \(worker builder\/w1\)/,
    );
    // The worker's own result arrives afterwards: ignored, but its tokens were spent.
    const cmds = run.feed(bad("a", 1, s(17), { tokens: [40, 2] }));
    expect(trace(cmds)).toEqual(["ignored task_result"]);
    expect(commandsOf(cmds, "ignored")[0]!.reason).toMatch(
      /late result of attempt 1 of task a: it had timed out/,
    );
    expect(run.state.usage.input_tokens).toBe(40);
    // A second copy of it is a plain duplicate: no more tokens.
    run.feed(bad("a", 1, s(18), { tokens: [40, 2] }));
    expect(run.state.usage.input_tokens).toBe(40);
    expect(run.task("a").status).toBe("dispatched");
  });

  it("restarts the run clock when a started attempt is redelivered to another replica", () => {
    const run = new Run(mission({ resultGraceS: 0 }));
    run.feed(planned(plan([{ id: "a", timeout_s: 10 }])));
    run.feed(started("a", 1, s(1), "builder/w1"));
    expect(trace(run.feed(started("a", 1, s(1), "builder/w1")))).toEqual(["ignored task_started"]);
    expect(run.feed(started("a", 1, s(8), "builder/w2"))).toEqual([]);
    expect(run.feed(tick(s(12)))).toEqual([]);
    expect(trace(run.feed(tick(s(18))))).toContain("dispatch a#2");
  });
});

describe("mission machine: replanning", () => {
  it("requests a replan when a task finally fails, and never redoes succeeded work", () => {
    const run = new Run(mission({ maxReplans: 1 }));
    run.feed(
      planned(
        plan(
          [
            { id: "a", max_attempts: 1 },
            { id: "b", max_attempts: 1 },
          ],
          [
            { id: "c", depends_on: ["a"] },
            { id: "d", depends_on: ["b"] },
          ],
        ),
      ),
    );
    run.feed(ok("a", 1, s(1)));
    expect(dispatched(run.last)).toEqual(["c#1"]);
    // b fails while c is in flight: no new dispatch, the mission drains first.
    expect(trace(run.feed(bad("b", 1, s(2))))).toEqual(["emit wave_completed 1"]);
    expect(run.state.status).toBe("replanning");
    expect(run.state.replan).toEqual({ phase: "draining" });
    const cmds = run.feed(ok("c", 1, s(3)));
    expect(trace(cmds)).toEqual(["request_replan r1"]);
    const req = commandsOf(cmds, "request_replan")[0]!;
    expect(req.failed).toEqual([{ id: "b", error: "b broke", attempts: 1 }]);
    expect(req.results.map((r) => [r.id, r.status])).toEqual([
      ["a", "succeeded"],
      ["b", "failed"],
      ["c", "succeeded"],
      ["d", "pending"],
    ]);
    expect(req.plan.waves).toHaveLength(2);

    // The revision keeps a (same id), redoes b, replaces d with e; c is left out.
    const revised = plan(
      [{ id: "a" }, { id: "b", instructions: "do b differently" }],
      [{ id: "e", depends_on: ["b", "c"] }],
    );
    const after = run.feed({ type: "replan_result", now: s(4), plan: revised });
    expect(trace(after)).toEqual(["emit wave_started 1", "dispatch b#2"]);
    const b2 = commandsOf(after, "dispatch")[0]!;
    // Attempt numbers continue (dedupe keys), the revision gives its own attempts.
    expect(b2.task).toMatchObject({
      attempt: 2,
      max_attempts: 4,
      instructions: "do b differently",
    });
    expect(run.state.revision).toBe(1);
    expect(run.task("a").status).toBe("succeeded");
    expect(run.task("c")).toMatchObject({ status: "succeeded", inPlan: false });
    expect(run.task("d").status).toBe("superseded");

    expect(dispatched(run.feed(ok("b", 2, s(5))))).toEqual(["e#1"]);
    const e1 = commandsOf(run.last, "dispatch")[0]!;
    expect(e1.task.inputs).toEqual({ b: "b done", c: "c done" });
    expect(trace(run.feed(ok("e", 1, s(6))))).toEqual([
      "emit wave_completed 2",
      "finish completed",
      "emit mission_completed",
    ]);
    // a was dispatched exactly once over the whole mission.
    expect(dispatched(run.all).filter((d) => d.startsWith("a#"))).toEqual(["a#1"]);
    const completed = commandsOf(run.last, "emit")[1]!.event;
    expect(completed).toMatchObject({
      payload: {
        tasks: { total: 4, succeeded: 4, failed: 0 },
        summary: "4 tasks succeeded in 2 waves, after 1 replan",
      },
    });
    expect(summarize(run.state).tasks).toMatchObject({ superseded: 1 });
    expect(run.state.replanHistory).toEqual([
      { revision: 1, failed: [{ id: "b", error: "b broke", attempts: 1 }] },
    ]);
  });

  it("fails the mission, naming the failures, when the replans are exhausted", () => {
    const run = new Run(mission({ maxReplans: 1 }));
    run.feed(planned(plan([{ id: "a", max_attempts: 1 }])));
    expect(trace(run.feed(bad("a", 1, s(1), { error: "compile error" })))).toEqual([
      "emit wave_completed 1",
      "request_replan r1",
    ]);
    run.feed({
      type: "replan_result",
      now: s(2),
      plan: plan([{ id: "a2", max_attempts: 1 }]),
    });
    const cmds = run.feed(bad("a2", 1, s(3), { error: "still broken" }));
    expect(trace(cmds)).toEqual(["emit wave_completed 1", "finish failed", "emit mission_failed"]);
    const ev = commandsOf(cmds, "emit")[1]!.event;
    expect(ev).toMatchObject({
      type: "mission_failed",
      payload: {
        reason: "task a2 failed after 1 attempt: still broken (after 1 replan)",
        failed_tasks: [{ id: "a2", error: "still broken" }],
      },
    });
  });

  it("fails the mission when the replan itself fails or is invalid", () => {
    const base = new Run(mission({ maxReplans: 2 }));
    base.feed(
      planned(
        plan([
          { id: "a", max_attempts: 1 },
          { id: "b", max_attempts: 1 },
        ]),
      ),
    );
    base.feed(bad("a", 1, s(1)), ok("b", 1, s(1)));
    expect(base.state.replan).toEqual({ phase: "requested" });

    const r1 = step(base.state, { type: "replan_result", now: s(2), error: "model unreachable" });
    expect(r1.state.status).toBe("failed");
    expect(r1.state.outcome?.reason).toBe(
      "task a failed after 1 attempt: a broke; replanning failed: model unreachable",
    );

    const r2 = step(base.state, {
      type: "replan_result",
      now: s(2),
      plan: plan([{ id: "x", depends_on: ["nope"] }]),
    });
    expect(r2.state.status).toBe("failed");
    expect(r2.state.outcome?.reason).toMatch(
      /revised plan is invalid: task x: depends on unknown task nope/,
    );

    // A revision may depend on earlier successes it does not list.
    const r3 = step(base.state, {
      type: "replan_result",
      now: s(2),
      plan: plan([{ id: "x", depends_on: ["b"] }]),
    });
    expect(r3.state.status).toBe("running");
    expect(dispatched(r3.commands)).toEqual(["x#1"]);
  });

  it("does not retry failures while draining; they join the replan's failures", () => {
    const run = new Run(mission({ maxReplans: 1 }));
    run.feed(
      planned(
        plan([
          { id: "a", max_attempts: 1 },
          { id: "b", max_attempts: 3 },
        ]),
      ),
    );
    run.feed(bad("a", 1, s(1)));
    expect(trace(run.feed(bad("b", 1, s(2))))).toEqual([
      "emit wave_completed 1",
      "request_replan r1",
    ]);
    const req = commandsOf(run.last, "request_replan")[0]!;
    expect(req.failed.map((f) => f.id)).toEqual(["a", "b"]);
  });

  it("ignores a replan result nobody asked for", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }])));
    expect(trace(run.feed({ type: "replan_result", now: s(1), error: "x" }))).toEqual([
      "ignored replan_result",
    ]);
    expect(run.state.status).toBe("running");
  });
});

describe("mission machine: cancellation, budgets, planning failures", () => {
  it("cancels: stops dispatch, aborts what is in flight, announces it", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }, { id: "b" }], [{ id: "c" }])));
    run.feed(started("a", 1, s(1)), ok("b", 1, s(2)));
    const cmds = run.feed({
      type: "cancel",
      now: s(3),
      reason: "operator said so",
      requested_by: "cli",
    });
    expect(trace(cmds)).toEqual(["abort a#1", "finish cancelled", "emit mission_cancelled"]);
    expect(commandsOf(cmds, "abort_tasks")[0]!.tasks).toEqual([
      { task_id: "a", agent: "builder", attempt: 1, worker: "builder/w1" },
    ]);
    expect(commandsOf(cmds, "emit")[0]!.event).toMatchObject({
      payload: { reason: "operator said so", requested_by: "cli" },
    });
    expect([run.task("a").status, run.task("b").status, run.task("c").status]).toEqual([
      "cancelled",
      "succeeded",
      "skipped",
    ]);
    // After a final state every input is ignored and nothing changes.
    const final = run.state;
    for (const input of [
      ok("a", 1, s(4)),
      tick(s(999)),
      { type: "cancel" as const, now: s(5), reason: "again" },
    ]) {
      expect(trace(run.feed(input))).toEqual([`ignored ${input.type}`]);
    }
    expect(run.state).toEqual(final);
  });

  it("fails the mission when the token budget is exceeded", () => {
    const run = new Run(mission({ budget: { tokens: 100 } }));
    run.feed(planned(plan([{ id: "a" }, { id: "b" }])));
    expect(run.feed(ok("a", 1, s(1), { tokens: [50, 20] }))).toEqual([]);
    const cmds = run.feed(ok("b", 1, s(2), { tokens: [20, 20] }));
    expect(trace(cmds)).toEqual(["emit wave_completed 1", "finish failed", "emit mission_failed"]);
    expect(run.state.outcome?.reason).toBe(
      "budget exceeded: 110 tokens used, the token budget is 100",
    );
  });

  it("fails the mission when the time budget is exceeded, on a tick", () => {
    const run = new Run(mission({ budget: { time_s: 30 } }));
    run.feed(planned(plan([{ id: "a" }]), s(1)));
    run.feed(started("a", 1, s(2)));
    expect(run.feed(tick(s(30)))).toEqual([]);
    expect(trace(run.feed(tick(s(31))))).toEqual([
      "abort a#1",
      "finish failed",
      "emit mission_failed",
    ]);
    expect(run.state.outcome?.reason).toBe(
      "budget exceeded: 31 s elapsed, the time budget is 30 s",
    );
  });

  it("fails the mission when planning fails or the plan is invalid", () => {
    const a = step(mission(), { type: "planned", now: s(1), error: "no tool call" });
    expect(a.state.outcome?.reason).toBe("planning failed: no tool call");
    expect(trace(a.commands)).toEqual(["finish failed", "emit mission_failed"]);
    const b = step(
      mission(),
      planned(
        plan([
          { id: "a", depends_on: ["b"] },
          { id: "b", depends_on: ["a"] },
        ]),
      ),
    );
    expect(b.state.outcome?.reason).toMatch(/dependency cycle: a → b → a/);
  });
});

describe("mission machine: late and duplicate inputs", () => {
  it("ignores duplicates, unknown tasks and attempts never dispatched, visibly", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }, { id: "b" }])));
    run.feed(ok("a", 1, s(1)));
    const before = run.state;
    const cases = [
      [ok("a", 1, s(2)), /duplicate result of attempt 1 of task a/],
      [ok("zz", 1, s(2)), /unknown task zz/],
      [ok("b", 2, s(2)), /attempt 2 of task b was never dispatched/],
      [started("b", 3, s(2)), /attempt 3 of task b was never dispatched/],
      [started("a", 1, s(2)), /task a has no attempt in flight \(it is succeeded\)/],
      [planned(plan([{ id: "q" }])), /already has a plan/],
    ] as const;
    for (const [input, reason] of cases) {
      const cmds = run.feed(input);
      expect(cmds).toHaveLength(1);
      const ignored = commandsOf(cmds, "ignored")[0]!;
      expect(ignored.reason).toMatch(reason);
    }
    expect(run.state).toEqual(before);
  });

  it("ignores the late result of a retried attempt", () => {
    const run = new Run(mission());
    run.feed(planned(plan([{ id: "a" }])));
    run.feed(bad("a", 1, s(1)));
    const cmds = run.feed(ok("a", 1, s(2)));
    expect(commandsOf(cmds, "ignored")[0]!.reason).toMatch(/duplicate result of attempt 1/);
    expect(run.task("a").status).toBe("dispatched");
    expect(trace(run.feed(started("a", 1, s(3))))).toEqual(["ignored task_started"]);
    expect(commandsOf(run.last, "ignored")[0]!.reason).toMatch(
      /late start of attempt 1 of task a: attempt 2 is current/,
    );
  });

  it("does not modify the state it is given", () => {
    const state = mission();
    const copy = structuredClone(state);
    step(state, planned(plan([{ id: "a" }])));
    expect(state).toEqual(copy);
    expect(T0).toBe(state.config.startedAt);
  });
});

describe("mission machine: the size of a task's inputs", () => {
  it("caps each dependency's summary, and all of them together, keeping head and tail", () => {
    const deps = Array.from({ length: 40 }, (_, i) => ({ id: `d${i}` }));
    const run = new Run(mission());
    run.feed(planned(plan(deps, [{ id: "c" }])));
    const huge = `START${"x".repeat(100_000)}END`;
    for (const [i, d] of deps.entries()) {
      run.feed(
        started(d.id, 1, s(i)),
        ok(d.id, 1, s(i + 1), { summary: i === 0 ? huge : "short" }),
      );
    }
    const c = commandsOf(run.last, "dispatch")[0]!;
    const first = c.task.inputs.d0!;
    const each = Math.min(INPUT_SUMMARY_BYTES, Math.floor(INPUTS_TOTAL_BYTES / 40));
    expect(Buffer.byteLength(first)).toBeLessThan(each + 64);
    expect(first).toMatch(/^START/);
    expect(first).toMatch(/END$/);
    expect(first).toMatch(/\[\.\.\. truncated \d+ bytes \.\.\.\]/);
    expect(c.task.inputs.d1).toBe("short");
  });
});
