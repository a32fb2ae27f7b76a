import { describe, expect, it } from "vitest";
import { makeEvent } from "../../src/schema/envelope.ts";
import type { SquadEvent } from "../../src/schema/events.ts";
import type { PlanInput } from "../../src/schema/plan.ts";
import {
  replay,
  resume,
  step,
  taskOf,
  type MissionCommand,
  type MissionInput,
  type MissionState,
} from "../../src/orchestrator/mission-machine.ts";
import {
  hasFinalEvent,
  inputFromEvent,
  inputsFromEvents,
} from "../../src/orchestrator/mission-history.ts";
import {
  MISSION,
  commandsOf,
  eventOf,
  mission,
  plan,
  result,
  s,
  trace,
} from "./mission-fixtures.ts";

/**
 * A simulated orchestrator shell: it records events on "squad.coordination"
 * (an array), feeds the machine the inputs made from them (with the event's
 * timestamp as `now`, as the real shell should), feeds ticks directly, and
 * publishes what the machine emits, which it then reads back like any event.
 */
class Shell {
  state: MissionState;
  readonly record: SquadEvent[] = [];
  readonly commands: MissionCommand[] = [];
  constructor(state: MissionState) {
    this.state = state;
  }
  private apply(input: MissionInput): MissionCommand[] {
    const r = step(this.state, input);
    this.state = r.state;
    this.commands.push(...r.commands);
    const out = [...r.commands];
    for (const c of r.commands) {
      if (c.kind !== "emit") continue;
      const ev = eventOf(c);
      this.record.push(ev);
      // The shell's own subscription delivers its events back.
      const echo = inputFromEvent(ev);
      if (echo) out.push(...this.apply(echo));
    }
    return out;
  }
  /** Record an event (by a worker or the shell) and feed it to the machine. */
  event(...args: Parameters<typeof makeEvent>): MissionCommand[] {
    const ev = makeEvent(...args);
    this.record.push(ev);
    const input = inputFromEvent(ev);
    return input ? this.apply(input) : [];
  }
  planned(p: PlanInput, revision: number, at: number) {
    return this.event(
      "mission_planned",
      { mission_id: MISSION, source: "orchestrator", timestamp: iso(at) },
      { title: "t", plan: p, planner: null, revision },
    );
  }
  started(task: string, attempt: number, at: number, worker = "builder-w1") {
    return this.event(
      "task_started",
      { mission_id: MISSION, task_id: task, source: `builder/${worker}`, timestamp: iso(at) },
      { attempt, worker: `builder/${worker}` },
    );
  }
  finished(task: string, status: "succeeded" | "failed", attempt: number, at: number, extra = {}) {
    return this.event(
      status === "succeeded" ? "task_completed" : "task_failed",
      { mission_id: MISSION, task_id: task, source: "builder/builder-w1", timestamp: iso(at) },
      { result: result(status, attempt, { summary: `${task} ${status}`, ...extra }) },
    );
  }
  tick(at: number) {
    return this.apply({ type: "tick", now: at });
  }
}
const iso = (ms: number) => new Date(ms).toISOString();

describe("replay of recorded events", () => {
  it("rebuilds the same state, including timeouts, retries, a replan and late results", () => {
    const sh = new Shell(mission({ maxReplans: 1, startTimeoutS: 60 }));
    sh.planned(plan([{ id: "a" }, { id: "b" }], [{ id: "c" }]), 0, s(0));
    sh.started("a", 1, s(1));
    sh.tick(s(30));
    // b#1 is never started in time: the orchestrator records a task_failed for it.
    expect(trace(sh.tick(s(60)))).toEqual([
      "emit task_failed b#1",
      "abort b#1",
      "dispatch b#2",
      "ignored task_result", // its own event read back
    ]);
    sh.started("b", 2, s(61));
    sh.started("b", 1, s(62)); // the abandoned attempt shows up late
    sh.finished("a", "succeeded", 1, s(70), { tokens: [100, 10] });
    sh.finished("b", "failed", 1, s(71), { tokens: [5, 5] }); // late result of b#1, tokens count
    sh.finished("b", "failed", 2, s(80));
    sh.started("b", 3, s(81));
    const cmds = sh.finished("b", "failed", 3, s(90), { retryable: false, error: "cannot fix" });
    const req = commandsOf(cmds, "request_replan")[0]!;
    expect(req.revision).toBe(1);
    sh.planned(
      plan([{ id: "b_fix" }], [{ id: "c", depends_on: ["a", "b_fix"] }]),
      req.revision,
      s(100),
    );
    sh.started("b_fix", 1, s(101));
    const lastDispatch = commandsOf(sh.finished("b_fix", "succeeded", 1, s(110)), "dispatch");
    expect(lastDispatch.map((d) => d.msg_id)).toEqual([`${MISSION}.c.1`]);
    sh.started("c", 1, s(111));
    sh.tick(s(120));

    // --- crash. A new orchestrator reads the record back.
    const inputs = inputsFromEvents(sh.record, MISSION);
    expect(inputs.map((i) => i.type)).toContain("task_result");
    const rebuilt = replay(mission({ maxReplans: 1, startTimeoutS: 60 }), inputs);
    expect(rebuilt.state).toEqual(sh.state);
    expect(rebuilt.state.usage.input_tokens).toBe(100 + 5 + 10 + 10 + 10);
    expect(hasFinalEvent(sh.record, MISSION)).toBe(false);

    // Resuming re-dispatches exactly what is in flight, with the same msg ids.
    const r = resume(rebuilt.state, s(500));
    expect(r.commands).toEqual(lastDispatch);
    // c had started, so its clock is not reset; it times out on its own terms.
    expect(taskOf(r.state, "c")!.attempts[0]!.startedAt).toBe(s(111));

    // The resumed mission carries on to the end.
    const end = step(r.state, {
      type: "task_result",
      now: s(501),
      task_id: "c",
      attempt: 1,
      result: result("succeeded", 1),
    });
    expect(trace(end.commands)).toEqual([
      "emit wave_completed 2",
      "finish completed",
      "emit mission_completed",
    ]);
  });

  it("re-requests a replan the crash interrupted, and gives an unstarted attempt a fresh start window", () => {
    const sh = new Shell(mission({ maxReplans: 1, startTimeoutS: 60 }));
    sh.planned(plan([{ id: "a", max_attempts: 1 }]), 0, s(0));
    sh.finished("a", "failed", 1, s(5));
    const rebuilt = replay(mission({ maxReplans: 1 }), inputsFromEvents(sh.record));
    expect(rebuilt.state).toEqual(sh.state);
    expect(trace(resume(rebuilt.state, s(10)).commands)).toEqual(["request_replan r1"]);

    const sh2 = new Shell(mission({ startTimeoutS: 60 }));
    sh2.planned(plan([{ id: "a" }]), 0, s(0));
    const st = replay(mission({ startTimeoutS: 60 }), inputsFromEvents(sh2.record)).state;
    const resumed = resume(st, s(300));
    expect(trace(resumed.commands)).toEqual(["dispatch a#1"]);
    expect(step(resumed.state, { type: "tick", now: s(359) }).commands).toEqual([]);
    expect(trace(step(resumed.state, { type: "tick", now: s(360) }).commands)).toContain(
      "dispatch a#2",
    );
  });

  it("maps a recorded cancellation, and knows when a mission is over", () => {
    const sh = new Shell(mission());
    sh.planned(plan([{ id: "a" }]), 0, s(0));
    sh.event(
      "mission_cancelled",
      { mission_id: MISSION, source: "cli", timestamp: iso(s(3)) },
      {
        reason: "stop",
        requested_by: "cli",
      },
    );
    expect(sh.state.status).toBe("cancelled");
    expect(hasFinalEvent(sh.record.filter((e) => e.source === "cli"))).toBe(false);
    expect(hasFinalEvent(sh.record)).toBe(true); // the orchestrator's own mission_cancelled
    const rebuilt = replay(mission(), inputsFromEvents(sh.record));
    expect(rebuilt.state).toEqual(sh.state);
    expect(trace(resume(rebuilt.state, s(9)).commands)).toEqual([
      "finish cancelled",
      "emit mission_cancelled",
    ]);
  });

  it("skips events of other missions and events the machine does not need", () => {
    const other = makeEvent(
      "task_started",
      { mission_id: "other", task_id: "a", source: "x" },
      { attempt: 1, worker: "b/1" },
    );
    const wave = makeEvent(
      "wave_started",
      { mission_id: MISSION, source: "orchestrator" },
      { wave: 1, task_ids: ["a"] },
    );
    expect(inputsFromEvents([other, wave], MISSION)).toEqual([]);
    expect(inputFromEvent(other)).toMatchObject({ type: "task_started", task_id: "a", attempt: 1 });
  });
});
