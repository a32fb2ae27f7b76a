/**
 * One valid example of every event type of the contract, built through
 * makeEvent (so each is checked by the schema). Used by the bus tests and as
 * the examples of docs/events.md.
 */
import { EVENT_TYPES, makeEvent, type EventType, type SquadEvent } from "../../src/schema/index.ts";

const MISSION = "m-20250101-demo";
const AT = "2025-01-01T12:00:00.000Z";

const result = (status: "succeeded" | "failed") => ({
  status,
  summary: status === "succeeded" ? "wrote hello.txt and checked it" : "the check failed",
  ...(status === "failed" ? { error: "verify: test -s hello.txt exited 1" } : {}),
  steps: [
    {
      tool: "run_shell",
      args: { command: "echo hello > hello.txt" },
      ok: true,
      exit_code: 0,
      duration_ms: 12,
      output: "",
    },
  ],
  verification: [
    {
      command: "test -s hello.txt",
      ok: status === "succeeded",
      exit_code: status === "succeeded" ? 0 : 1,
      output: "",
    },
  ],
  usage: { model: null, input_tokens: 0, output_tokens: 0 },
  attempt: 1,
  duration_ms: 40,
  worker: "builder/w1",
});

const task = {
  id: "t1",
  agent: "builder",
  wave: 1,
  title: "Write hello.txt",
  instructions: "Create hello.txt containing the word hello.",
  depends_on: [],
  acceptance: "hello.txt exists and is not empty",
  run: ["echo hello > hello.txt"],
  verify: ["test -s hello.txt"],
  inputs: {},
  timeout_s: 300,
  attempt: 1,
  max_attempts: 3,
};

/** Envelope and payload of each example, by type. */
function example(type: EventType, n: number): SquadEvent {
  const fields = (
    over: { task_id?: string | null; source?: string; target?: string | null } = {},
  ) => ({
    id: `ex-${String(n).padStart(2, "0")}-${type}`,
    mission_id: MISSION,
    timestamp: AT,
    source: "orchestrator",
    ...over,
  });
  switch (type) {
    case "mission_submitted":
      return makeEvent(type, fields({ source: "cli" }), {
        brief: "---\ntitle: Hello\n---\nWrite hello.txt.\n",
        source_path: "mission-briefs/hello.md",
      });
    case "mission_planned":
      return makeEvent(type, fields(), {
        title: "Hello",
        plan: {
          strategy: "one task",
          waves: [
            {
              wave: 1,
              rationale: "",
              tasks: [{ id: "t1", agent: "builder", title: "Write hello.txt" }],
            },
          ],
        },
        planner: null,
        revision: 0,
      });
    case "mission_completed":
      return makeEvent(type, fields(), {
        summary: "1 of 1 tasks succeeded",
        tasks: { total: 1, succeeded: 1, failed: 0 },
        duration_ms: 1500,
        usage: { input_tokens: 0, output_tokens: 0 },
        report: ".swarm/workspace/reports/m-20250101-demo.md",
      });
    case "mission_failed":
      return makeEvent(type, fields(), {
        reason: "task t1 failed after 3 attempts",
        failed_tasks: [{ id: "t1", error: "verify: test -s hello.txt exited 1" }],
      });
    case "mission_cancelled":
      return makeEvent(type, fields(), { reason: "cancelled by the user", requested_by: "cli" });
    case "wave_started":
      return makeEvent(type, fields(), { wave: 1, task_ids: ["t1"] });
    case "wave_completed":
      return makeEvent(type, fields(), { wave: 1, succeeded: ["t1"], failed: [] });
    case "task_assigned":
      return makeEvent(type, fields({ task_id: "t1", target: "builder" }), { task });
    case "task_started":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        attempt: 1,
        worker: "builder/w1",
        delivery: 1,
      });
    case "task_progress":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        attempt: 1,
        worker: "builder/w1",
        step: result("succeeded").steps[0]!,
      });
    case "task_model_called":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        attempt: 1,
        worker: "builder/w1",
        call: 1,
        model: "ollama:qwen2.5:7b",
        input_tokens: 412,
        output_tokens: 38,
        duration_ms: 1840,
        tool_calls: ["write_file"],
        text: "I will write hello.txt.",
        finish_reason: "stop",
        steps_before: 0,
      });
    case "task_completed":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        result: result("succeeded"),
      });
    case "task_failed":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        result: { ...result("failed"), retryable: true },
      });
    case "task_merged":
      return makeEvent(type, fields({ task_id: "t1" }), {
        attempt: 1,
        commit: "1111111111111111111111111111111111111111",
        merged: "2222222222222222222222222222222222222222",
        onto: "3333333333333333333333333333333333333333",
        head: "2222222222222222222222222222222222222222",
        fast_forward: false,
      });
    case "task_conflicted":
      return makeEvent(type, fields({ task_id: "t1" }), {
        attempt: 1,
        commit: "1111111111111111111111111111111111111111",
        onto: "3333333333333333333333333333333333333333",
        reason: "conflict",
        files: ["src/app.ts"],
        error: "CONFLICT (content): Merge conflict in src/app.ts",
      });
    case "agent_online":
      return makeEvent(
        type,
        { ...fields({ source: "builder/w1" }), mission_id: null },
        {
          agent: "builder",
          instance: "w1",
          pid: 4242,
          host: "localhost",
          concurrency: 1,
          model: "ollama:qwen2.5:7b",
          version: "0.1.0",
        },
      );
    case "agent_heartbeat":
      return makeEvent(
        type,
        { ...fields({ source: "builder/w1" }), mission_id: null },
        {
          agent: "builder",
          instance: "w1",
          in_flight: 1,
          completed: 3,
          failed: 0,
          uptime_s: 60,
        },
      );
    case "agent_offline":
      return makeEvent(
        type,
        { ...fields({ source: "builder/w1" }), mission_id: null },
        {
          agent: "builder",
          instance: "w1",
          reason: "SIGTERM",
        },
      );
    case "approval_requested":
      return makeEvent(type, fields({ task_id: "t1", source: "builder/w1" }), {
        approval_id: "ap1",
        agent: "builder",
        worker: "builder/w1",
        command: "rm -rf build",
        reason: "deletes files outside the allow list",
        timeout_s: 300,
      });
    case "approval_resolved":
      return makeEvent(type, fields({ task_id: "t1", source: "cli" }), {
        approval_id: "ap1",
        decision: "approved",
        by: "cli",
      });
  }
}

/** One valid event per type, in EVENT_TYPES order. */
export function exampleEvents(): SquadEvent[] {
  return EVENT_TYPES.map((type, i) => example(type, i + 1));
}

/** A valid `task_assigned` for tests that need many distinct tasks. */
export function taskAssignedEvent(
  agent: string,
  taskId: string,
  opts: { missionId?: string; attempt?: number; id?: string } = {},
): SquadEvent {
  const attempt = opts.attempt ?? 1;
  return makeEvent(
    "task_assigned",
    {
      id: opts.id ?? `${opts.missionId ?? MISSION}.${taskId}.${attempt}`,
      mission_id: opts.missionId ?? MISSION,
      task_id: taskId,
      source: "orchestrator",
      target: agent,
    },
    { task: { ...task, id: taskId, agent, attempt } },
  );
}
