/**
 * The mission machine with a git workspace: bases, the merging state, the
 * merge queue's answers (task_merged / task_conflicted), resume and replay.
 */
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../src/schema/envelope.ts";
import type { SquadEvent } from "../../src/schema/events.ts";
import type { Changes } from "../../src/schema/result.ts";
import { reportMarkdown } from "../../src/orchestrator/report.ts";
import {
  replay,
  resume,
  summarize,
  type MissionInput,
  type MissionState,
} from "../../src/orchestrator/mission-machine.ts";
import { inputsFromEvents } from "../../src/orchestrator/mission-history.ts";
import {
  MISSION,
  Run,
  T0,
  bad,
  commandsOf,
  deepFreeze,
  dispatched,
  eventOf,
  mission,
  ok,
  plan,
  result,
  s,
  trace,
} from "./mission-fixtures.ts";

/** A commit id made of one repeated hex digit (or two), for reading tests. */
const C = (x: string) => x.repeat(40).slice(0, 40);
const BASE = C("0");

const changes = (base: string, commit: string): Changes => ({
  base,
  commit,
  files: [{ path: "f.txt", status: "modified", additions: 1, deletions: 0 }],
  additions: 1,
  deletions: 0,
});

const plannedWs = (p: ReturnType<typeof plan>, now = T0): MissionInput => ({
  type: "planned",
  now,
  plan: p,
  revision: 0,
  workspace: { base: BASE },
});

const merged = (
  task_id: string,
  attempt: number,
  now: number,
  m: { commit: string; merged?: string; onto: string; head: string },
): MissionInput => ({
  type: "task_merged",
  now,
  task_id,
  attempt,
  commit: m.commit,
  merged: m.merged ?? m.head,
  onto: m.onto,
  head: m.head,
});

const conflicted = (
  task_id: string,
  attempt: number,
  now: number,
  files = ["f.txt"],
  reason: "conflict" | "verify_failed" = "conflict",
): MissionInput => ({
  type: "task_conflicted",
  now,
  task_id,
  attempt,
  reason,
  files,
  error: "CONFLICT (content): Merge conflict in f.txt",
});

const baseOf = (cmds: ReturnType<Run["feed"]>) =>
  Object.fromEntries(commandsOf(cmds, "dispatch").map((d) => [d.task.id, d.task.base]));

describe("mission machine with a git workspace", () => {
  it("dispatches on the head, counts a task only when merged, and moves the head", () => {
    const run = new Run(mission());
    const first = run.feed(plannedWs(plan([{ id: "a" }, { id: "b" }], [{ id: "c" }])));
    expect(baseOf(first)).toEqual({ a: BASE, b: BASE });
    expect(run.state.workspace).toEqual({ base: BASE, head: BASE });

    // a succeeded with a commit: merging, handed to the queue, c still waits.
    expect(trace(run.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) })))).toEqual([
      "integrate a#1",
    ]);
    const integrate = commandsOf(run.last, "integrate")[0]!;
    expect(integrate).toMatchObject({
      task_id: "a",
      agent: "builder",
      attempt: 1,
      changes: { base: BASE, commit: C("a") },
      verify: [],
    });
    expect(run.task("a").status).toBe("merging");
    expect(run.state.merging.map((m) => m.task_id)).toEqual(["a"]);
    // b as well, finishing second.
    expect(trace(run.feed(ok("b", 1, s(2), { changes: changes(BASE, C("b")) })))).toEqual([
      "integrate b#1",
    ]);
    expect(run.state.merging.map((m) => m.task_id)).toEqual(["a", "b"]);

    // a fast-forwards: succeeded, head = its commit; c waits for b.
    expect(
      trace(run.feed(merged("a", 1, s(3), { commit: C("a"), onto: BASE, head: C("a") }))),
    ).toEqual([]);
    expect(run.task("a")).toMatchObject({ status: "succeeded", commit: C("a") });
    expect(run.state.workspace!.head).toBe(C("a"));

    // b is rebased onto a: c starts from a head holding both.
    const cmds = run.feed(
      merged("b", 1, s(4), { commit: C("b"), merged: C("b1"), onto: C("a"), head: C("b1") }),
    );
    expect(trace(cmds)).toEqual(["emit wave_completed 1", "emit wave_started 2", "dispatch c#1"]);
    expect(baseOf(cmds)).toEqual({ c: C("b1") });
    expect(run.task("b").commit).toBe(C("b1"));

    // c changed nothing: it counts at once, no merge.
    const end = run.feed(ok("c", 1, s(5)));
    expect(trace(end)).toEqual([
      "emit wave_completed 2",
      "finish completed",
      "emit mission_completed",
    ]);
    const final = commandsOf(end, "emit").at(-1)!;
    expect(final.event.payload).toMatchObject({ head: C("b1") });
    for (const e of commandsOf(run.all, "emit")) expect(() => eventOf(e)).not.toThrow();

    // The report shows the head and each task's commit on the branch.
    const sum = summarize(run.state);
    expect(sum.head).toBe(C("b1"));
    expect(sum.rows.map((r) => [r.id, r.commit])).toEqual([
      ["a", C("a")],
      ["b", C("b1")],
      ["c", null],
    ]);
    const md = reportMarkdown({
      title: "t",
      sourcePath: null,
      planner: null,
      plan: run.state.plan,
      summary: sum,
      results: { b: result("succeeded", 1, { changes: changes(BASE, C("b")) }) },
      workspace: "/w",
      generatedAt: "2025-03-01T12:00:00.000Z",
    });
    expect(md).toContain(`| Branch head | \`${C("b1")}\``);
    expect(md).toContain(
      `Commit \`${C("b1").slice(0, 12)}\` on the mission branch (+1 −0 in \`f.txt\`).`,
    );
  });

  it("retries a conflicted attempt on the new head, then replans with the conflicting files", () => {
    const run = new Run(mission({ maxReplans: 1 }));
    run.feed(plannedWs(plan([{ id: "a" }, { id: "b", max_attempts: 2 }])));
    run.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) }));
    run.feed(ok("b", 1, s(2), { changes: changes(BASE, C("b")) }));
    run.feed(merged("a", 1, s(3), { commit: C("a"), onto: BASE, head: C("a") }));

    const retry = run.feed(conflicted("b", 1, s(4), ["f.txt"]));
    expect(trace(retry)).toEqual(["dispatch b#2"]);
    expect(baseOf(retry)).toEqual({ b: C("a") });
    const first = run.task("b").attempts[0]!;
    expect(first.outcome).toBe("conflicted");
    expect(first.error).toContain("merge conflict (f.txt)");

    // The retry conflicts again (verify fails on the merged tree): attempts are spent.
    run.feed(ok("b", 2, s(5), { changes: changes(C("a"), C("b2")) }));
    const cmds = run.feed(conflicted("b", 2, s(6), [], "verify_failed"));
    expect(trace(cmds)).toEqual(["emit wave_completed 1", "request_replan r1"]);
    const req = commandsOf(cmds, "request_replan")[0]!;
    expect(req.failed).toEqual([
      { id: "b", error: expect.stringContaining("verify failed on the merged tree"), attempts: 2 },
    ]);

    const run2 = new Run(mission({ maxReplans: 1 }));
    run2.feed(plannedWs(plan([{ id: "a" }, { id: "b", max_attempts: 1 }])));
    run2.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) }));
    run2.feed(ok("b", 1, s(2), { changes: changes(BASE, C("b")) }));
    run2.feed(merged("a", 1, s(3), { commit: C("a"), onto: BASE, head: C("a") }));
    const replan = commandsOf(
      run2.feed(conflicted("b", 1, s(4), ["f.txt", "g.txt"])),
      "request_replan",
    );
    expect(replan[0]!.failed[0]).toMatchObject({ id: "b", files: ["f.txt", "g.txt"] });
  });

  it("drains merges before a replan, and a merge that lands while draining counts", () => {
    const run = new Run(mission({ maxReplans: 1 }));
    run.feed(plannedWs(plan([{ id: "a" }, { id: "b", max_attempts: 1 }])));
    run.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) }));
    expect(trace(run.feed(bad("b", 1, s(2))))).toEqual([]); // waits for a's merge
    expect(run.state.status).toBe("replanning");
    const cmds = run.feed(merged("a", 1, s(3), { commit: C("a"), onto: BASE, head: C("a") }));
    expect(trace(cmds)).toEqual(["emit wave_completed 1", "request_replan r1"]);
    expect(commandsOf(cmds, "request_replan")[0]!.results.find((r) => r.id === "a")!.status).toBe(
      "succeeded",
    );
  });

  it("ignores answers for attempts that are not merging, and retries a merge onto a stale head", () => {
    const run = new Run(mission());
    run.feed(plannedWs(plan([{ id: "a" }, { id: "b" }])));
    expect(
      trace(run.feed(merged("a", 1, s(1), { commit: C("a"), onto: BASE, head: C("a") }))),
    ).toEqual(["ignored task_merged"]);
    run.feed(ok("a", 1, s(2), { changes: changes(BASE, C("a")) }));
    expect(trace(run.feed(conflicted("a", 2, s(3))))).toEqual(["ignored task_conflicted"]);
    // Onto a head the branch is not at: a failed attempt, never a lost merge.
    const cmds = run.feed(merged("a", 1, s(4), { commit: C("a"), onto: C("f"), head: C("e") }));
    expect(trace(cmds)).toEqual(["dispatch a#2"]);
    expect(run.state.workspace!.head).toBe(BASE);
    expect(run.task("a").attempts[0]!.error).toContain("the mission branch is at");
  });

  it("ends a cancelled mission with the head, the merging task cancelled", () => {
    const run = new Run(mission());
    run.feed(plannedWs(plan([{ id: "a" }, { id: "b" }])));
    run.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) }));
    run.feed(ok("b", 1, s(2), { changes: changes(BASE, C("b")) }));
    run.feed(merged("a", 1, s(3), { commit: C("a"), onto: BASE, head: C("a") }));
    const cmds = run.feed({ type: "cancel", now: s(4), reason: "stop" });
    expect(run.task("b").status).toBe("cancelled");
    expect(run.state.merging).toEqual([]);
    expect(commandsOf(cmds, "emit").at(-1)!.event.payload).toMatchObject({ head: C("a") });
    // An answer after the end changes nothing.
    expect(
      trace(run.feed(merged("b", 1, s(5), { commit: C("b"), onto: C("a"), head: C("b1") }))),
    ).toEqual(["ignored task_merged"]);
  });

  it("without a workspace (old events) counts a result with changes at once and sends no base", () => {
    const run = new Run(mission());
    const first = run.feed({ type: "planned", now: T0, plan: plan([{ id: "a" }], [{ id: "b" }]) });
    expect(baseOf(first)).toEqual({ a: undefined });
    expect(dispatched(run.feed(ok("a", 1, s(1), { changes: changes(BASE, C("a")) })))).toEqual([
      "b#1",
    ]);
    const end = run.feed(ok("b", 1, s(2)));
    expect(commandsOf(end, "emit").at(-1)!.event.payload).not.toHaveProperty("head");
    expect(run.state.workspace).toBeNull();
  });

  it("resume hands merging tasks to the queue again, in the order their results came", () => {
    const run = new Run(mission());
    run.feed(plannedWs(plan([{ id: "a" }, { id: "b" }, { id: "c" }])));
    run.feed(ok("b", 1, s(1), { changes: changes(BASE, C("b")) }));
    run.feed(ok("a", 1, s(2), { changes: changes(BASE, C("a")) }));
    run.feed(merged("b", 1, s(3), { commit: C("b"), onto: BASE, head: C("b") }));
    run.feed(ok("c", 1, s(4), { changes: changes(BASE, C("c")) }));
    const r = resume(deepFreeze(run.state), s(10));
    expect(trace(r.commands)).toEqual(["integrate a#1", "integrate c#1"]);
  });
});

describe("replay of a mission with merges", () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const ev = (...args: Parameters<typeof makeEvent>): SquadEvent => makeEvent(...args);
  const orch = (at: number, task: string | null = null) => ({
    mission_id: MISSION,
    task_id: task,
    source: "orchestrator",
    timestamp: iso(at),
  });
  const worker = (at: number, task: string) => ({
    mission_id: MISSION,
    task_id: task,
    source: "builder/w1",
    timestamp: iso(at),
  });
  const res = (attempt: number, commit?: string, base = BASE) => ({
    status: "succeeded" as const,
    summary: "done",
    steps: [],
    verification: [],
    usage: { model: null, input_tokens: 1, output_tokens: 1 },
    attempt,
    duration_ms: 5,
    worker: "builder/w1",
    ...(commit ? { changes: changes(base, commit) } : {}),
  });

  it("rebuilds the same head from the recorded events, and the same state as the live run", () => {
    const p = plan([{ id: "a" }, { id: "b" }], [{ id: "c" }]);
    const record: SquadEvent[] = [
      ev("mission_planned", orch(s(0)), {
        title: "t",
        plan: p,
        planner: null,
        revision: 0,
        workspace: { base: BASE, source: "empty", path: null },
      }),
      ev("task_completed", worker(s(1), "a"), { result: res(1, C("a")) }),
      ev("task_completed", worker(s(2), "b"), { result: res(1, C("b")) }),
      ev("task_merged", orch(s(3), "a"), {
        attempt: 1,
        commit: C("a"),
        merged: C("a"),
        onto: BASE,
        head: C("a"),
        fast_forward: true,
      }),
      ev("task_conflicted", orch(s(4), "b"), {
        attempt: 1,
        commit: C("b"),
        onto: C("a"),
        reason: "conflict",
        files: ["f.txt"],
        error: "conflict",
      }),
      ev("task_completed", worker(s(5), "b"), { result: res(2, C("b2"), C("a")) }),
      ev("task_merged", orch(s(6), "b"), {
        attempt: 2,
        commit: C("b2"),
        merged: C("b2"),
        onto: C("a"),
        head: C("b2"),
        fast_forward: true,
      }),
    ];
    const inputs = inputsFromEvents(record, MISSION);
    const live = new Run(mission());
    live.feed(...inputs);
    const rebuilt = replay(mission(), inputs);
    expect(rebuilt.state).toEqual(live.state);
    const st: MissionState = rebuilt.state;
    expect(st.workspace).toEqual({ base: BASE, head: C("b2") });
    expect(st.tasks.find((t) => t.id === "c")!.status).toBe("dispatched");
    expect(baseOf(commandsOf(resume(st, s(9)).commands, "dispatch"))).toEqual({ c: C("b2") });
  });
});

describe("a replan after conflicts", () => {
  it("shows the planner the files a task's commit conflicted on", async () => {
    const { plannerUserPrompt } = await import("../../src/orchestrator/planner-prompt.ts");
    const text = plannerUserPrompt({
      brief: { title: "t", body: "b", agents: null, budget: {}, plan: null, sourcePath: null },
      agents: [{ name: "builder", description: "builds" }],
      previous: {
        plan: { waves: [{ wave: 1, tasks: [{ id: "b", title: "B" }] }] },
        results: [{ id: "b", status: "failed", error: "merge conflict (f.txt): x" }],
        failed: [{ id: "b", error: "merge conflict (f.txt): x", files: ["f.txt", "g.txt"] }],
      },
    });
    expect(text).toContain("conflict with work already merged, in: f.txt, g.txt");
  });
});
