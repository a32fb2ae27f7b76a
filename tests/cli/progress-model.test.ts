import { describe, expect, it } from "vitest";
import {
  applyProgress,
  initialProgress,
  MAX_NOTICES,
  progressTable,
  type ProgressInput,
  type ProgressState,
} from "../../src/cli/launcher/progress-model.ts";
import type { DeploySummary } from "../../src/cli/launcher/deploy-summary.ts";
import type { SupervisorEvent } from "../../src/cli/supervisor.ts";
import { makeEvent, type SquadEvent } from "../../src/schema/index.ts";

const M = "m-20250101-120000-abcd";
const T0 = Date.parse("2025-01-01T12:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function ev<T extends SquadEvent["type"]>(
  type: T,
  seconds: number,
  payload: unknown,
  fields: { task_id?: string; source?: string; mission_id?: string | null } = {},
): SquadEvent {
  return makeEvent(
    type,
    {
      mission_id: fields.mission_id === undefined ? M : fields.mission_id,
      task_id: fields.task_id ?? null,
      source: fields.source ?? "orchestrator",
      timestamp: at(seconds),
    },
    payload as never,
  );
}

const plan = {
  strategy: "",
  waves: [
    {
      wave: 1,
      rationale: "",
      tasks: [
        { id: "a", agent: "builder", title: "Build A", depends_on: [], max_attempts: 2 },
        { id: "b", agent: "builder", title: "Build B", depends_on: [] },
      ],
    },
    {
      wave: 2,
      rationale: "",
      tasks: [{ id: "c", agent: "tester", title: "Test", depends_on: ["a", "b"] }],
    },
  ],
  risks: [],
  success_criteria: [],
};

const planned = ev("mission_planned", 1, { title: "Demo", plan, planner: null });

function assigned(id: string, agent: string, wave: number, attempt: number, s: number) {
  return ev(
    "task_assigned",
    s,
    {
      task: {
        id,
        agent,
        wave,
        title: id,
        instructions: "",
        depends_on: [],
        acceptance: "",
        inputs: {},
        timeout_s: 60,
        attempt,
        max_attempts: 2,
      },
    },
    { task_id: id },
  );
}

function result(status: "succeeded" | "failed", attempt: number, worker: string, extra = {}) {
  return {
    result: {
      status,
      summary: status,
      ...(status === "failed" ? { error: "exit 1" } : {}),
      steps: [],
      verification: [],
      usage: { model: "ollama:m", input_tokens: 100, output_tokens: 20 },
      attempt,
      duration_ms: 1500,
      worker,
      ...extra,
    },
  };
}

const started = (id: string, attempt: number, worker: string, s: number) =>
  ev("task_started", s, { attempt, worker }, { task_id: id, source: worker });

function run(inputs: ProgressInput[], state = initialProgress(M, T0)): ProgressState {
  return inputs.reduce(applyProgress, state);
}
const evs = (...e: SquadEvent[]): ProgressInput[] => e.map((event) => ({ kind: "event", event }));

describe("progress model", () => {
  it("lays out the planned waves and tasks, all pending", () => {
    const s = run(evs(planned));
    expect(s.title).toBe("Demo");
    expect(s.phase).toBe("planned");
    expect(s.waves.map((w) => [w.wave, w.status])).toEqual([
      [1, "pending"],
      [2, "pending"],
    ]);
    expect(s.taskOrder).toEqual(["a", "b", "c"]);
    expect(s.tasks.a).toMatchObject({ agent: "builder", status: "pending", maxAttempts: 2 });
  });

  it("follows a task through assigned, running and succeeded with worker, duration and tokens", () => {
    let s = run(evs(planned, ev("wave_started", 2, { wave: 1, task_ids: ["a", "b"] })));
    expect(s.phase).toBe("running");
    expect(s.tasks.a!.status).toBe("waiting");
    s = run(evs(assigned("a", "builder", 1, 1, 2), started("a", 1, "builder/i1", 3)), s);
    expect(s.tasks.a).toMatchObject({ status: "running", attempt: 1, worker: "builder/i1" });
    const running = progressTable(s, T0 + 5500).waves[0]!.tasks[0]!;
    expect(running).toMatchObject({ status: "running", duration: "2.5s", attempt: "1/2" });
    s = run(
      evs(ev("task_completed", 4, result("succeeded", 1, "builder/i1"), { task_id: "a" })),
      s,
    );
    const row = progressTable(s, T0 + 99_000).waves[0]!.tasks[0]!;
    expect(row).toMatchObject({
      status: "succeeded",
      duration: "1.5s",
      tokens: "120 tok",
      tone: "ok",
    });
  });

  it("counts a running attempt's tokens from its model calls and shows the last one", () => {
    const call = (n: number, s: number, attempt: number, tools: string[]) =>
      ev(
        "task_model_called",
        s,
        {
          attempt,
          worker: "builder/i1",
          call: n,
          model: "ollama:m",
          input_tokens: 40,
          output_tokens: 5,
          duration_ms: 300,
          tool_calls: tools,
          text: "",
          steps_before: n - 1,
        },
        { task_id: "a", source: "builder/i1" },
      );
    let s = run(evs(planned, assigned("a", "builder", 1, 1, 2), started("a", 1, "builder/i1", 3)));
    s = run(evs(call(1, 4, 1, ["write_file"]), call(2, 5, 1, [])), s);
    expect(progressTable(s, T0 + 6000).waves[0]!.tasks[0]!).toMatchObject({
      status: "running",
      tokens: "90 tok",
      detail: "model call 2 → text",
    });
    // A stale attempt's call changes nothing; the next attempt counts from 0.
    s = run(
      evs(
        ev("task_failed", 6, result("failed", 1, "builder/i1"), { task_id: "a" }),
        assigned("a", "builder", 1, 2, 7),
        started("a", 2, "builder/i1", 8),
        call(3, 9, 1, ["run_shell"]),
        call(1, 9, 2, ["run_shell"]),
      ),
      s,
    );
    expect(s.tasks.a).toMatchObject({
      attempt: 2,
      tokens: 45,
      lastStep: "model call 1 → run_shell",
    });
    // The result's usage is the attempt's word.
    s = run(
      evs(ev("task_completed", 10, result("succeeded", 2, "builder/i1"), { task_id: "a" })),
      s,
    );
    expect(s.tasks.a!.tokens).toBe(120);
  });

  it("never goes back when task_assigned arrives after task_started (two subscriptions)", () => {
    const s = run(
      evs(planned, started("a", 1, "builder/i1", 3), assigned("a", "builder", 1, 1, 2)),
    );
    expect(s.tasks.a!.status).toBe("running");
    expect(s.tasks.a!.worker).toBe("builder/i1");
  });

  it("shows a retry after a failed attempt, then the next attempt", () => {
    let s = run(
      evs(
        planned,
        assigned("a", "builder", 1, 1, 2),
        started("a", 1, "builder/i1", 3),
        ev("task_failed", 4, result("failed", 1, "builder/i1"), { task_id: "a" }),
      ),
    );
    expect(s.tasks.a!.status).toBe("retrying");
    expect(s.notices.at(-1)!.text).toContain("task a attempt 1/2 failed: exit 1");
    s = run(evs(assigned("a", "builder", 1, 2, 5), started("a", 2, "builder/i2", 6)), s);
    expect(s.tasks.a).toMatchObject({ status: "running", attempt: 2, worker: "builder/i2" });
    // A late result of attempt 1 changes nothing.
    s = run(evs(ev("task_failed", 7, result("failed", 1, "builder/i1"), { task_id: "a" })), s);
    expect(s.tasks.a!.status).toBe("running");
    s = run(evs(ev("task_failed", 8, result("failed", 2, "builder/i2"), { task_id: "a" })), s);
    expect(s.tasks.a!.status).toBe("failed");
  });

  it("a failure that is not retryable is final at once", () => {
    const s = run(
      evs(
        planned,
        assigned("a", "builder", 1, 1, 2),
        ev("task_failed", 4, result("failed", 1, "builder/i1", { retryable: false }), {
          task_id: "a",
        }),
      ),
    );
    expect(s.tasks.a!.status).toBe("failed");
  });

  it("ends the mission: waiting tasks skipped, running ones cancelled", () => {
    const s = run(
      evs(
        planned,
        ev("wave_started", 2, { wave: 1, task_ids: ["a", "b"] }),
        started("a", 1, "builder/i1", 3),
        ev(
          "mission_cancelled",
          4,
          { reason: "interrupted", requested_by: "deploy-swarm" },
          { source: "cli" },
        ),
      ),
    );
    expect(s.cancelRequested).toBe(true);
    expect(s.phase).toBe("running");
    expect(progressTable(s, T0).status.text).toBe("running (cancelling)");
    const end = run(evs(ev("mission_cancelled", 5, { reason: "interrupted" })), s);
    expect(end.phase).toBe("cancelled");
    expect(end.tasks.a!.status).toBe("cancelled");
    expect(end.tasks.b!.status).toBe("skipped");
    expect(end.tasks.c!.status).toBe("skipped");
  });

  it("ignores other missions' events", () => {
    const other = ev(
      "mission_planned",
      1,
      { title: "Other", plan, planner: null },
      {
        mission_id: "m-20250101-120000-ffff",
      },
    );
    expect(run(evs(other)).taskOrder).toEqual([]);
  });

  it("marks tasks a revised plan dropped as superseded", () => {
    const revised = {
      ...plan,
      waves: [
        {
          wave: 1,
          rationale: "",
          tasks: [{ id: "d", agent: "builder", title: "D", depends_on: [] }],
        },
      ],
    };
    const s = run(
      evs(
        planned,
        ev("task_completed", 2, result("succeeded", 1, "builder/i1"), { task_id: "a" }),
        ev("mission_planned", 3, {
          title: "Demo",
          plan: revised,
          planner: "ollama:m",
          revision: 1,
        }),
      ),
    );
    expect(s.tasks.a!.status).toBe("succeeded");
    expect(s.tasks.b!.status).toBe("superseded");
    expect(s.tasks.d!.status).toBe("pending");
  });

  it("turns supervisor events into replica states and notices, and maps workers to replicas", () => {
    const sup = (event: SupervisorEvent, t = 0): ProgressInput => ({
      kind: "supervisor",
      event,
      at: T0 + t,
    });
    let s = run([
      sup({ type: "started", name: "builder-1", pid: 4242, restarts: 0 }),
      {
        kind: "event",
        event: ev(
          "agent_online",
          1,
          {
            agent: "builder",
            instance: "i1",
            pid: 4242,
            host: "h",
            concurrency: 1,
            model: null,
            version: "0.1.0",
          },
          { mission_id: null, source: "builder/i1" },
        ),
      },
    ]);
    expect(s.notices).toEqual([]); // a first start is not news
    expect(s.workers["builder/i1"]).toBe("builder-1");
    s = run(evs(planned, started("a", 1, "builder/i1", 3)), s);
    expect(progressTable(s, T0).waves[0]!.tasks[0]!.replica).toBe("builder-1");

    s = run(
      [
        sup({ type: "exited", name: "builder-1", pid: 4242, code: null, signal: "SIGKILL" }, 4000),
        sup({ type: "restarting", name: "builder-1", delayMs: 250, restarts: 1 }, 4001),
        sup({ type: "started", name: "builder-1", pid: 4343, restarts: 1 }, 4300),
      ],
      s,
    );
    expect(s.notices.map((n) => n.text)).toEqual([
      "builder-1 (pid 4242) exited: signal SIGKILL",
      "builder-1 restarting in 250ms (restart 1)",
      "builder-1 restarted (pid 4343, restart 1)",
    ]);
    expect(s.replicas["builder-1"]).toMatchObject({ state: "up", pid: 4343, restarts: 1 });
    // The task it was running stalls until JetStream redelivers it (same attempt).
    expect(s.tasks.a!.status).toBe("stalled");
    expect(progressTable(s, T0).waves[0]!.tasks[0]!.detail).toContain("builder-1 died");
    const redelivered = run(evs(started("a", 1, "builder/i9", 40)), s);
    expect(redelivered.tasks.a).toMatchObject({ status: "running", worker: "builder/i9" });
    expect(progressTable(s, T0).replicas).toEqual([
      { name: "builder-1", text: "builder-1 ● ↻1", tone: "warn" },
    ]);
    // While stopping, exits are expected: no notice, and at the end one cell says so.
    s = run(
      [
        { kind: "stopping" },
        sup({ type: "exited", name: "builder-1", pid: 4343, code: 0, signal: null }),
      ],
      s,
    );
    expect(s.notices).toHaveLength(3);
    expect(progressTable(s, T0).replicas[0]!.text).toBe("all 1 processes stopped");
  });

  it("keeps only the latest notices", () => {
    const inputs: ProgressInput[] = Array.from({ length: MAX_NOTICES + 3 }, (_, i) => ({
      kind: "notice",
      text: `n${i}`,
      at: T0 + i,
    }));
    const s = run(inputs);
    expect(s.notices).toHaveLength(MAX_NOTICES);
    expect(s.notices.at(-1)!.text).toBe(`n${MAX_NOTICES + 2}`);
  });

  it("ends with summary lines: status, counts, duration, tokens, restarts and the report", () => {
    const summary: DeploySummary = {
      mission_id: M,
      status: "completed",
      tasks: { total: 3, succeeded: 3, failed: 0 },
      duration_ms: 4200,
      report: "/ws/reports/x.md",
      usage: { input_tokens: 300, output_tokens: 60 },
      reason: null,
    };
    const s = run([
      {
        kind: "supervisor",
        event: { type: "started", name: "tester-1", pid: 1, restarts: 2 },
        at: T0,
      },
      ...evs(planned),
      { kind: "summary", summary, at: T0 + 5000 },
    ]);
    expect(s.phase).toBe("completed");
    const t = progressTable(s, T0 + 10_000);
    expect(t.summary!.map((l) => l.text)).toEqual([
      `✔ mission ${M} completed: 3/3 tasks succeeded, 0 failed in 4.2s; tokens 300 in, 60 out`,
      "  restarts: tester-1 ×2",
      "  report: /ws/reports/x.md",
    ]);
    expect(t.elapsed).toBe("5.0s"); // frozen at the end, not `now`
    expect(t.tokens).toBe("360 tokens");
  });

  it("shows a task's commit and changed lines, its merge, and a conflict as a retry", () => {
    const C = "c".repeat(40);
    const B = "b".repeat(40);
    const H = "d".repeat(40);
    const changes = {
      base: B,
      commit: C,
      files: [
        { path: "x.txt", status: "added", additions: 3, deletions: 0 },
        { path: "y.txt", status: "modified", additions: 1, deletions: 2 },
      ],
      additions: 4,
      deletions: 2,
    };
    let s = run(
      evs(
        planned,
        assigned("a", "builder", 1, 1, 2),
        started("a", 1, "builder/i1", 3),
        ev("task_completed", 4, result("succeeded", 1, "builder/i1", { changes }), {
          task_id: "a",
        }),
      ),
    );
    expect(progressTable(s, T0).waves[0]!.tasks[0]!.detail).toBe("cccccccccc 2 files +4 -2");
    s = run(
      evs(
        ev(
          "task_merged",
          5,
          { attempt: 1, commit: C, merged: H, onto: B, head: H, fast_forward: false },
          { task_id: "a" },
        ),
      ),
      s,
    );
    expect(progressTable(s, T0).waves[0]!.tasks[0]!.detail).toBe(
      "merged dddddddddd (rebased) 2 files +4 -2",
    );
    s = run(
      evs(
        assigned("b", "builder", 1, 1, 2),
        started("b", 1, "builder/i2", 3),
        ev("task_completed", 4, result("succeeded", 1, "builder/i2", { changes }), {
          task_id: "b",
        }),
        ev(
          "task_conflicted",
          6,
          {
            attempt: 1,
            commit: C,
            onto: H,
            reason: "conflict",
            files: ["x.txt"],
            error: "conflict",
          },
          { task_id: "b" },
        ),
      ),
      s,
    );
    expect(s.tasks.b).toMatchObject({ status: "retrying", error: "not merged: conflict in x.txt" });
    expect(s.notices.at(-1)?.text).toBe("task b attempt 1 not merged: conflict in x.txt");
  });
});
