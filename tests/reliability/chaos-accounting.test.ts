/**
 * The pure parts of the chaos suite: how a mission is accounted for (what
 * counts as lost or duplicated), and the bad-input corpus itself (the same
 * seed gives the same corpus, and every message in it is really bad).
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { accountMission } from "../../src/chaos/accounting.ts";
import { badInputCorpus, HARMLESS_KIND } from "../../src/chaos/bad-input-corpus.ts";
import { runStepPlan, taskId } from "../../src/chaos/mission-briefs.ts";
import { createPrng } from "../../src/chaos/prng.ts";
import {
  decodeEvent,
  makeEvent,
  type SquadEvent,
  type TaskResult,
} from "../../src/schema/index.ts";

const M = "m-acct";
const result = (attempt: number): TaskResult => ({
  status: "succeeded",
  summary: "ok",
  steps: [],
  verification: [],
  usage: { model: null, input_tokens: 0, output_tokens: 0 },
  attempt,
  duration_ms: 1,
  worker: "builder/w1",
});
const started = (task: string, delivery = 1) =>
  makeEvent(
    "task_started",
    { mission_id: M, task_id: task, source: "builder/w1" },
    { attempt: 1, worker: "builder/w1", delivery },
  );
const completed = (task: string) =>
  makeEvent(
    "task_completed",
    { mission_id: M, task_id: task, source: "builder/w1" },
    { result: result(1) },
  );
const counts = { total: 3, succeeded: 3, failed: 0 };
const usage = { input_tokens: 0, output_tokens: 0 };
const missionCompleted = makeEvent(
  "mission_completed",
  { mission_id: M, source: "orchestrator" },
  { summary: "done", tasks: counts, duration_ms: 1, usage, report: null },
);

describe("accounting a chaos mission", () => {
  it("counts a task run twice (two deliveries, two lines) as one duplicated execution", () => {
    const events: SquadEvent[] = [
      started("a"),
      started("b"),
      started("b", 2),
      started("c"),
      completed("a"),
      completed("b"),
      completed("c"),
      missionCompleted,
    ];
    const a = accountMission({ taskIds: ["a", "b", "c"], events, runLines: { a: 1, b: 2, c: 1 } });
    expect(a).toMatchObject({
      status: "completed",
      succeeded: 3,
      lost: 0,
      executions: 4,
      duplicatedExecutions: 1,
      tasksRunMoreThanOnce: 1,
      starts: 4,
      unexplainedExecutions: 0,
    });
  });

  it("calls lost what has no outcome, or a success without its side effect", () => {
    const events: SquadEvent[] = [started("a"), completed("a"), completed("b"), missionCompleted];
    const a = accountMission({ taskIds: ["a", "b", "c"], events, runLines: { a: 1 } });
    expect(a.lost).toBe(2);
    expect(a.lostTasks).toEqual(["b", "c"]);
  });

  it("flags an execution no task_started announced", () => {
    const a = accountMission({
      taskIds: ["a"],
      events: [started("a"), completed("a"), missionCompleted],
      runLines: { a: 3 },
    });
    expect(a.unexplainedExecutions).toBe(2);
  });

  it("splits a failed mission into failed (with reasons) and skipped; nothing is lost", () => {
    const failed = makeEvent(
      "mission_failed",
      { mission_id: M, source: "orchestrator" },
      {
        reason: "task b failed after 3 attempts: exit 1",
        failed_tasks: [{ id: "b", error: "exit 1" }],
      },
    );
    const a = accountMission({
      taskIds: ["a", "b", "c"],
      events: [started("a"), completed("a"), failed],
      runLines: { a: 1, b: 3 },
    });
    expect(a).toMatchObject({ status: "failed", succeeded: 1, failed: 1, skipped: 1, lost: 0 });
    expect(a.failures).toEqual([{ id: "b", error: "exit 1" }]);
  });

  it("counts every unfinished task lost when the mission never ended", () => {
    const a = accountMission({
      taskIds: ["a", "b"],
      events: [started("a"), completed("a")],
      runLines: { a: 1 },
    });
    expect(a).toMatchObject({ status: "no final event", succeeded: 1, lost: 1 });
  });
});

describe("the chaos plans", () => {
  it("chains tasks across waves, each on one task of the wave before", () => {
    const plan = runStepPlan({ tasks: 7, agents: ["builder", "tester"], waves: 3, stepS: 0 });
    expect(plan.waves.map((w) => w.tasks.map((t) => t.id))).toEqual([
      ["t001", "t002", "t003"],
      ["t004", "t005", "t006"],
      ["t007"],
    ]);
    expect(plan.waves[1]!.tasks[2]!.depends_on).toEqual([taskId(3)]);
    expect(plan.waves[0]!.tasks.map((t) => t.agent)).toEqual(["builder", "tester", "builder"]);
  });
});

describe("the bad-input corpus", () => {
  const corpus = (seed: number) =>
    badInputCorpus({
      prng: createPrng(seed),
      random: 300,
      agents: ["builder", "tester"],
      missionId: "m-real",
      taskIds: ["t001", "t002"],
    });

  it("is the same for the same seed", () => {
    const a = corpus(7);
    const b = corpus(7);
    const digest = (m: { kind: string; subject: string; data: Uint8Array }) =>
      `${m.kind} ${m.subject} ${createHash("sha256").update(m.data).digest("hex")}`;
    expect(a.map(digest)).toEqual(b.map(digest));
    expect(corpus(8).map((m) => m.kind)).not.toEqual(a.map((m) => m.kind));
  });

  it("holds only messages their readers must refuse", () => {
    for (const seed of [1, 2, 3]) {
      for (const m of corpus(seed)) {
        if (m.expect === "too_large") {
          expect(m.data.length).toBeGreaterThan(1024 * 1024);
          continue;
        }
        let event: SquadEvent | null;
        try {
          event = decodeEvent(m.data);
        } catch {
          event = null;
        }
        const what = `${m.kind} on ${m.subject}`;
        if (m.expect === "dlq" && m.subject.startsWith("squad.tasks.")) {
          const agent = m.subject.split(".")[2];
          const usable = event?.type === "task_assigned" && event.payload.task.agent === agent;
          expect(usable, what).toBe(false);
        } else if (m.expect === "dlq") {
          const usable = event?.type === "mission_submitted" && event.mission_id !== null;
          expect(usable, what).toBe(false);
        } else if (m.expect === "mission_failed") {
          expect(event?.type, what).toBe("mission_submitted");
          expect(m.reason, what).toBeDefined();
        } else if (m.expect === "skipped") {
          if (m.kind === HARMLESS_KIND) expect(event, what).not.toBeNull();
          else expect(event, what).toBeNull();
        } else {
          expect(m.subject, what).toMatch(/^squad\.tasks\.(ghost|NOT_AN_AGENT)$/);
        }
      }
    }
  });
});
