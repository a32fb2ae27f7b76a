import { describe, expect, it } from "vitest";
import { chainLatencies } from "../../src/bench/dispatch-latency.ts";
import type { ProbeRecord } from "../../src/bench/event-probe.ts";
import { runDurations } from "../../src/bench/model-scaling.ts";

const rec = (at: number, type: string, taskId: string | null): ProbeRecord => ({
  at,
  type,
  subject: type === "task_assigned" ? "squad.tasks.builder" : "squad.coordination",
  missionId: "m-1",
  taskId,
  attempt: 1,
  agent: null,
  worker: null,
  status: null,
  reason: null,
  fastForward: null,
});

describe("chainLatencies", () => {
  it("pairs each task's assigned with its started, and each result with the next assigned", () => {
    const records = [
      rec(0, "mission_planned", null),
      rec(10, "task_assigned", "c1"),
      rec(12, "task_started", "c1"),
      rec(13, "task_progress", "c1"),
      rec(20, "task_completed", "c1"),
      rec(23, "task_assigned", "c2"),
      rec(27, "task_started", "c2"),
      rec(28, "task_started", "c2"), // a duplicate start does not count twice
      rec(30, "task_completed", "c2"),
    ];
    expect(chainLatencies({ records })).toEqual({
      assignedToStarted: [2, 4],
      resultToNextAssigned: [3],
    });
  });
});

describe("runDurations", () => {
  it("measures task_started to task_completed per task", () => {
    const records = [
      rec(0, "task_started", "a"),
      rec(5, "task_started", "b"),
      rec(400, "task_completed", "a"),
      rec(420, "task_completed", "b"),
      rec(430, "task_completed", "never-started"),
    ];
    expect(runDurations(records)).toEqual([400, 415]);
  });
});
