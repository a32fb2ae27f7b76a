/**
 * The mission view's pure update functions (src/orchestrator/mission-view.ts):
 * events folded into a summary, idempotent by stream sequence; the index's
 * active and finished lists; where a start's replay begins.
 */
import { describe, expect, it } from "vitest";
import {
  emptyIndex,
  emptySummary,
  foldMissionEvent,
  foldMissionEventInPlace,
  placeInIndex,
  settleTaskCounts,
} from "../../src/orchestrator/mission-view.ts";
import {
  MISSION_VIEW_FINISHED_KEPT,
  MissionSummaryValue,
  MissionViewIndex,
  makeEvent,
  resumeFrom,
  type MissionSummaryValue as Summary,
  type SquadEvent,
} from "../../src/schema/index.ts";
import { deepFreeze } from "./mission-fixtures.ts";

const at = (s: number) => new Date(Date.parse("2025-03-01T12:00:00.000Z") + s * 1000).toISOString();
const NOW = at(0);

function planned(id: string, tasks: string[], revision = 0): SquadEvent {
  return makeEvent(
    "mission_planned",
    { mission_id: id, source: "orchestrator", timestamp: at(1) },
    {
      title: `Mission ${id}`,
      planner: null,
      revision,
      submitted_at: at(0),
      submitted_by: "cli",
      plan: {
        waves: [{ wave: 1, tasks: tasks.map((t) => ({ id: t, agent: "builder", title: t })) }],
      },
    },
  );
}

const result = (status: "succeeded" | "failed", model: string | null, tokens: number) => ({
  status,
  summary: status,
  steps: [],
  verification: [],
  usage: { model, input_tokens: tokens, output_tokens: tokens / 2 },
  attempt: 1,
  duration_ms: 5,
  worker: "builder/w1",
});

function task(
  id: string,
  t: string,
  type: "task_started" | "task_completed" | "task_failed",
  model: string | null = null,
  tokens = 0,
): SquadEvent {
  const env = { mission_id: id, task_id: t, source: "builder/w1", timestamp: at(3) };
  if (type === "task_started") return makeEvent(type, env, { attempt: 1, worker: "builder/w1" });
  return makeEvent(type, env, {
    result: result(type === "task_completed" ? "succeeded" : "failed", model, tokens),
  });
}

const wave = (id: string) =>
  makeEvent(
    "wave_started",
    { mission_id: id, source: "orchestrator", timestamp: at(2) },
    { wave: 1, task_ids: ["a", "b"] },
  );

const completed = (id: string) =>
  makeEvent(
    "mission_completed",
    { mission_id: id, source: "orchestrator", timestamp: at(9) },
    {
      summary: "2 of 2",
      tasks: { total: 2, succeeded: 2, failed: 0 },
      duration_ms: 9000,
      usage: { input_tokens: 30, output_tokens: 15 },
      report: "/r.md",
    },
  );

/** The events folded in order, the n-th at stream sequence seq0 + n. */
function foldAll(events: SquadEvent[], seq0 = 10): Summary | undefined {
  let s: Summary | undefined;
  events.forEach((e, i) => (s = foldMissionEvent(s && deepFreeze(s), e, seq0 + i)));
  return s;
}

describe("foldMissionEventInPlace (the writer's hot path)", () => {
  it("ends where the copy-on-write fold ends, once its counts are settled; refuses what is not its own or folded", () => {
    const events = [
      planned("m1", ["a", "b", "c"]),
      wave("m1"),
      task("m1", "a", "task_started"),
      task("m1", "b", "task_started"),
      task("m1", "a", "task_completed", "ollama:qwen", 20),
      task("m1", "b", "task_failed", null, 0),
      task("m1", "b", "task_started"),
    ];
    const pure = foldAll(events)!;
    const own = emptySummary("m1", events[0]!, 10);
    events.forEach((e, i) => expect(foldMissionEventInPlace(own, e, 10 + i)).toBe(true));
    // Counts wait for the settle: per event they would cost the whole mission.
    expect(own.tasks).toEqual({ total: 0, succeeded: 0, failed: 0, running: 0 });
    settleTaskCounts(own);
    expect(own).toEqual(pure);
    expect(own.tasks).toEqual({ total: 3, succeeded: 1, failed: 0, running: 1 });
    const before = structuredClone(own);
    expect(foldMissionEventInPlace(own, task("m1", "c", "task_completed", "x", 2), 12)).toBe(false);
    expect(foldMissionEventInPlace(own, task("m2", "c", "task_completed", "x", 2), 99)).toBe(false);
    expect(own).toEqual(before);
  });
});

describe("foldMissionEvent", () => {
  it("follows a mission from plan to end: state, progress, times, tokens by model, who submitted", () => {
    const events = [
      planned("m1", ["a", "b"]),
      wave("m1"),
      task("m1", "a", "task_started"),
      task("m1", "b", "task_started"),
      task("m1", "a", "task_completed", "ollama:qwen", 20),
    ];
    const running = foldAll(events)!;
    expect(MissionSummaryValue.parse(running)).toEqual(running);
    expect(running).toMatchObject({
      mission_id: "m1",
      title: "Mission m1",
      state: "running",
      submitted_by: "cli",
      submitted_at: at(0),
      started_at: at(2),
      ended_at: null,
      tasks: { total: 2, succeeded: 1, failed: 0, running: 1 },
      tokens: { "ollama:qwen": { input_tokens: 20, output_tokens: 10 } },
      first_seq: 10,
      last_seq: 14,
    });
    const done = foldAll([...events, task("m1", "b", "task_completed", null, 0), completed("m1")])!;
    expect(done).toMatchObject({
      state: "completed",
      ended_at: at(9),
      tasks: { total: 2, succeeded: 2, failed: 0, running: 0 },
      usage: { input_tokens: 30, output_tokens: 15 },
      report: "/r.md",
      tokens: {
        "ollama:qwen": { input_tokens: 20, output_tokens: 10 },
        "run-only": { input_tokens: 0, output_tokens: 0 },
      },
      counts_final: true,
    });
  });

  it("is idempotent by sequence: an event at or below last_seq changes nothing (a replay, a second orchestrator)", () => {
    const s = foldAll([
      planned("m1", ["a"]),
      wave("m1"),
      task("m1", "a", "task_completed", "x", 4),
    ])!;
    expect(foldMissionEvent(s, task("m1", "a", "task_completed", "x", 4), 12)).toBe(s);
    expect(foldMissionEvent(s, planned("m1", ["a", "b", "c"]), 10)).toBe(s);
    // The same event at a new sequence (a duplicate published twice) is folded: tokens are per result.
    expect(foldMissionEvent(s, task("m1", "a", "task_started"), 13)!.tasks).toEqual({
      total: 1,
      succeeded: 1,
      failed: 0,
      running: 0,
    });
  });

  it("a cancel request from the CLI is a request; only the orchestrator's cancellation ends it", () => {
    const req = makeEvent(
      "mission_cancelled",
      { mission_id: "m1", source: "cli", timestamp: at(4) },
      { reason: "not needed", requested_by: "cli" },
    );
    const asked = foldAll([planned("m1", ["a"]), req])!;
    expect(asked).toMatchObject({ state: "planned", cancel_requested: true, reason: "not needed" });
    const ended = foldMissionEvent(
      asked,
      makeEvent(
        "mission_cancelled",
        { mission_id: "m1", source: "orchestrator", timestamp: at(5) },
        { reason: "not needed" },
      ),
      12,
    )!;
    expect(ended).toMatchObject({ state: "cancelled", cancel_requested: false, ended_at: at(5) });
  });

  it("a replan counts the new plan's tasks plus those that already succeeded", () => {
    const s = foldAll([
      planned("m1", ["a", "b"]),
      task("m1", "a", "task_completed"),
      task("m1", "b", "task_failed"),
      planned("m1", ["c"], 1),
      task("m1", "c", "task_started"),
    ])!;
    expect(s.revision).toBe(1);
    expect(s.tasks).toEqual({ total: 2, succeeded: 1, failed: 0, running: 1 });
  });

  it("events without a mission id leave the summary alone", () => {
    const hb = makeEvent(
      "agent_heartbeat",
      { mission_id: null, source: "builder/w1" },
      { agent: "builder", instance: "w1", in_flight: 0, completed: 0, failed: 0, uptime_s: 1 },
    );
    expect(foldMissionEvent(undefined, hb, 1)).toBeUndefined();
  });
});

describe("placeInIndex and resumeFrom", () => {
  const s = (events: SquadEvent[], seq0: number) => foldAll(events, seq0)!;

  it("a planned mission is active from its first event; at its end it moves to finished", () => {
    const idx0 = deepFreeze(emptyIndex(NOW));
    const m1 = s([planned("m1", ["a"])], 5);
    const m2 = s([planned("m2", ["a"]), wave("m2")], 7);
    const idx1 = placeInIndex(idx0, [m1, m2], 8, NOW);
    expect(MissionViewIndex.parse(idx1)).toEqual(idx1);
    expect(idx1.active).toEqual([
      { mission_id: "m1", first_seq: 5 },
      { mission_id: "m2", first_seq: 7 },
    ]);
    expect(resumeFrom(idx1)).toBe(5);
    const m1done = s([planned("m1", ["a"]), completed("m1")], 5);
    const idx2 = placeInIndex(deepFreeze(idx1), [m1done], 20, NOW);
    expect(idx2.active).toEqual([{ mission_id: "m2", first_seq: 7 }]);
    expect(idx2.finished).toEqual(["m1"]);
    expect(resumeFrom(idx2)).toBe(7);
    // Nothing unfinished: from just after the watermark.
    const idx3 = placeInIndex(idx2, [s([planned("m2", ["a"]), completed("m2")], 7)], 25, NOW);
    expect(idx3.active).toEqual([]);
    expect(resumeFrom(idx3)).toBe(26);
  });

  it("is idempotent, never lowers the watermark, and answers the same index when nothing changes", () => {
    const m1 = s([planned("m1", ["a"])], 5);
    const idx = placeInIndex(emptyIndex(NOW), [m1], 9, NOW);
    expect(placeInIndex(idx, [m1], 9, NOW)).toBe(idx);
    expect(placeInIndex(idx, [m1], 3, NOW)).toBe(idx);
    // A stale fold (still running) of a mission another writer already finished does not bring it back.
    const done = placeInIndex(idx, [s([planned("m1", ["a"]), completed("m1")], 5)], 9, NOW);
    expect(placeInIndex(done, [m1], 9, NOW)).toBe(done);
  });

  it("a mission with only a request (a cancel of an unknown id) is never active: it would hold every start back", () => {
    const req = makeEvent(
      "mission_cancelled",
      { mission_id: "ghost", source: "cli", timestamp: at(4) },
      { reason: "x", requested_by: "cli" },
    );
    const idx = placeInIndex(emptyIndex(NOW), [s([req], 3)], 40, NOW);
    expect(idx.active).toEqual([]);
    expect(resumeFrom(idx)).toBe(41);
  });

  it("keeps the newest MISSION_VIEW_FINISHED_KEPT finished missions", () => {
    let idx = emptyIndex(NOW);
    for (let i = 0; i < MISSION_VIEW_FINISHED_KEPT + 5; i++)
      idx = placeInIndex(
        idx,
        [s([planned(`m${i}`, ["a"]), completed(`m${i}`)], i * 2 + 1)],
        i * 2 + 2,
        NOW,
      );
    expect(idx.finished).toHaveLength(MISSION_VIEW_FINISHED_KEPT);
    expect(idx.finished[0]).toBe("m5");
    expect(idx.finished.at(-1)).toBe(`m${MISSION_VIEW_FINISHED_KEPT + 4}`);
  });
});
