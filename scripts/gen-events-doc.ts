// Writes docs/events.md, the event contract for client authors, with one REAL
// example per event type: it starts its own nats-server (temp store, random
// port), runs this checkout's orchestrator and workers as processes, runs
// three missions (the demo brief, one whose check fails, one cancelled with
// `swarm cancel`), feeds a worker a message it can't parse (a dead letter),
// stops a worker (agent_offline), runs a mission with a git workspace whose
// "reviewer" tasks this script answers itself with real commits (task_merged,
// task_conflicted from the orchestrator's merge queue), and records
// everything on squad.> with a watcher. Nothing emits approval_* yet, and the recorded missions
// run no model (no task_model_called): those examples come from tests/helpers/example-events.ts
// (SYNTHETIC), and the document says so.
//
//   node scripts/gen-events-doc.ts              (a minute or so; needs nats-server)
//   node scripts/gen-events-doc.ts --out FILE
import { mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream } from "@nats-io/jetstream";
import * as prettier from "prettier";
import { z } from "zod";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  watchEvents,
  type NatsConnection,
} from "../src/bus/index.ts";
import { newMissionId, submitMission } from "../src/client/submission.ts";
import {
  EVENT_TYPES,
  EventPayloads,
  DlqRecord,
  MissionSummaryValue,
  MissionViewIndex,
  type EventType,
  makeEvent,
  type SquadEvent,
  type Task,
} from "../src/schema/index.ts";
import { bundleLimitsFromEnv, openBundleStore } from "../src/workspace/bundle-store.ts";
import { MissionRepo } from "../src/workspace/mission-repo.ts";
import { commitFiles } from "../tests/workspace/repo-fixtures.ts";
import { exampleEvents } from "../tests/helpers/example-events.ts";
import { startNatsServer } from "../tests/helpers/nats-server.ts";
import {
  REPO_ROOT,
  killAllSwarms,
  runSwarm,
  spawnSwarm,
  swarmEnv,
} from "../tests/helpers/swarm-process.ts";

const outArg = process.argv.indexOf("--out");
const OUT =
  outArg > 0 && process.argv[outArg + 1]
    ? path.resolve(process.argv[outArg + 1]!)
    : path.join(REPO_ROOT, "docs/events.md");
const STRING_LIMIT = 240;
const WORKSPACE_PLACEHOLDER = "<SWARM_WORKSPACE>";
const NOT_A_TASK = "run the build, please";

interface Captured {
  event: SquadEvent;
  subject: string;
}

// ---------------------------------------------------------------- the run

const FAILING_BRIEF = `---
title: "Docs example: a task whose check fails"
agents: [builder]
plan:
  strategy: One task; its verify command fails, and it has a single attempt.
  waves:
    - wave: 1
      rationale: Nothing to wait for.
      tasks:
        - id: write-config
          agent: builder
          title: Write config.json
          instructions: Write config.json with the server port.
          acceptance: config.json is valid JSON.
          run:
            - |
              echo '{"port": 8080' > config.json
          verify:
            - node -e "JSON.parse(require('fs').readFileSync('config.json', 'utf8'))"
          max_attempts: 1
---
# A task whose check fails
`;

const SLOW_BRIEF = `---
title: "Docs example: a mission cancelled while it runs"
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: long-build
          agent: builder
          title: A long build
          run: ["sleep 120"]
---
# A mission cancelled while it runs
`;

const MERGE_PLAN = `title: "Docs example: a merge queue, with a conflict"
agents: [reviewer]
plan:
  strategy: Three tasks edit the mission's repository; two of them change the same line.
  waves:
    - wave: 1
      rationale: All three at once; they finish in the order a, b, c.
      tasks:
        - { id: title-a, agent: reviewer, title: Retitle the README, instructions: Change its first line. }
        - { id: notes-b, agent: reviewer, title: Write the notes, instructions: Write NOTES.md. }
        - { id: title-c, agent: reviewer, title: Retitle the README too, instructions: Change its first line. }
`;

/**
 * A mission with a git workspace whose tasks this script answers as a
 * reviewer replica would: a real commit on each attempt's base, its bundle
 * published, then task_started / task_completed with result.changes. The
 * orchestrator's merge queue does the rest (a fast-forward, a rebase, a
 * conflict and its retry on the new head).
 */
async function mergeExample(nc: NatsConnection, ws: string, missionId: string) {
  const store = await openBundleStore(nc, bundleLimitsFromEnv({}));
  const repo = await MissionRepo.open(path.join(ws, ".docs-reviewer"), missionId, store);
  const publisher = createPublisher(nc);
  const base = await commitFiles(repo, null, { "README.md": "# Library\n\nBooks.\n" });
  await repo.publish(base, []);
  const files = (t: Task): Record<string, string> => {
    if (t.id === "notes-b") return { "NOTES.md": "Notes.\n" };
    if (t.id === "title-a") return { "README.md": "# Library A\n\nBooks.\n" };
    return {
      "README.md": t.attempt === 1 ? "# Library C\n\nBooks.\n" : "# Library A and C\n\nBooks.\n",
    };
  };
  const order = ["title-a", "notes-b", "title-c"];
  const completed = new Set<string>();
  const answer = async (t: Task, waitFor: (what: string, pred: () => boolean) => Promise<void>) => {
    const before = order[order.indexOf(t.id) - 1];
    if (t.attempt === 1 && before) await waitFor(`${before} done`, () => completed.has(before));
    const env = { mission_id: missionId, task_id: t.id, source: "reviewer/docs-example" };
    await publisher.publish(
      makeEvent("task_started", env, { attempt: t.attempt, worker: env.source }),
    );
    await repo.ensure(t.base!);
    const msg = `${t.title}\n\nSquad-Mission: ${missionId}\nSquad-Task: ${t.id}\nSquad-Attempt: ${t.attempt}\nSquad-Agent: reviewer\n`;
    const commit = await commitFiles(repo, t.base!, files(t), msg);
    await repo.publish(commit, [t.base!]);
    await publisher.publish(
      makeEvent("task_completed", env, {
        result: {
          status: "succeeded",
          summary: `${t.title}: done`,
          steps: [],
          verification: [],
          usage: { model: null, input_tokens: 0, output_tokens: 0 },
          attempt: t.attempt,
          duration_ms: 12,
          worker: env.source,
          changes: await repo.diffChanges(t.base!, commit),
        },
      }),
    );
    completed.add(t.id);
  };
  await publisher.publish(
    makeEvent(
      "mission_submitted",
      { id: `${missionId}.submitted`, mission_id: missionId, source: "cli" },
      {
        brief: `---\n${MERGE_PLAN}---\n# A merge queue example\n`,
        source_path: null,
        workspace: { base, source: "empty", path: null },
      },
    ),
  );
  return answer;
}

async function record(): Promise<{ captured: Captured[]; deadLetters: DlqRecord[]; ws: string }> {
  const server = await startNatsServer();
  const ws = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-events-doc-")));
  const env = swarmEnv(server.url, ws, { SWARM_LOG_LEVEL: "warn" });
  const nc = await connectBus({ servers: server.url, name: "events-doc" });
  const captured: Captured[] = [];
  const deadLetters: DlqRecord[] = [];
  const waiters = new Set<() => void>();
  const poke = () => waiters.forEach((w) => w());
  const until = async (what: string, pred: () => boolean, timeoutMs = 60_000) => {
    if (pred()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  };
  const seen = (pred: (e: SquadEvent) => boolean) => () => captured.some((c) => pred(c.event));
  const finished = (missionId: string) =>
    seen(
      (e) =>
        e.mission_id === missionId &&
        e.source === "orchestrator" &&
        ["mission_completed", "mission_failed", "mission_cancelled"].includes(e.type),
    );

  let answerReviewer: Awaited<ReturnType<typeof mergeExample>> | null = null;
  try {
    await provisionStreams(nc);
    const watch = watchEvents(nc, {
      onEvent: (event, subject) => {
        captured.push({ event, subject });
        poke();
        if (
          event.type === "task_assigned" &&
          event.payload.task.agent === "reviewer" &&
          answerReviewer
        ) {
          void answerReviewer(event.payload.task, until).catch((err: unknown) =>
            console.error(`the docs reviewer failed: ${String(err)}`),
          );
        }
      },
      onDeadLetter: (record) => {
        deadLetters.push(record);
        poke();
      },
      onInvalid: (err, subject, data) => {
        // The plain text fed to builder below is meant to be invalid.
        if (new TextDecoder().decode(data) !== NOT_A_TASK)
          console.error(`invalid message on ${subject}: ${err.message}`);
      },
    });
    await watch.ready;

    spawnSwarm(["orchestrator"], env);
    const workers = Object.fromEntries(
      ["builder", "tester", "docs_writer"].map((a) => [
        a,
        spawnSwarm(["worker", "--agent", a], env),
      ]),
    );
    for (const agent of Object.keys(workers))
      await until(
        `${agent} online`,
        seen((e) => e.type === "agent_online" && e.payload.agent === agent),
      );

    console.log("running the demo mission");
    const demoPath = "mission-briefs/demo-library.md";
    const demo = newMissionId();
    await submitMission(nc, {
      brief: await readFile(path.join(REPO_ROOT, demoPath), "utf8"),
      sourcePath: demoPath,
      missionId: demo,
    });
    await until("the demo mission's end", finished(demo));

    console.log("running a mission that fails");
    const failing = newMissionId();
    await submitMission(nc, { brief: FAILING_BRIEF, sourcePath: null, missionId: failing });
    await until("the failing mission's end", finished(failing));

    console.log("running a mission and cancelling it with `swarm cancel`");
    const slow = newMissionId();
    await submitMission(nc, { brief: SLOW_BRIEF, sourcePath: null, missionId: slow });
    await until(
      "the slow task to start",
      seen((e) => e.mission_id === slow && e.type === "task_started"),
    );
    const cancel = await runSwarm(
      ["cancel", slow, "--reason", "superseded by a newer brief", "--wait"],
      env,
    );
    if (cancel.code !== 0) throw new Error(`swarm cancel exited ${cancel.code}: ${cancel.stderr}`);
    await until("the cancelled mission's end", finished(slow));

    console.log("running a mission with a git workspace through the merge queue");
    const merging = newMissionId();
    answerReviewer = await mergeExample(nc, ws, merging);
    await until("the merge example's end", finished(merging));

    console.log("feeding builder a message it can't parse");
    await jetstream(nc).publish("squad.tasks.builder", NOT_A_TASK, {
      msgID: "docs-example-not-a-task",
    });
    await until("a dead letter", () => deadLetters.length > 0);

    await until(
      "a heartbeat",
      seen((e) => e.type === "agent_heartbeat"),
      20_000,
    );
    console.log("stopping builder");
    workers.builder!.kill("SIGTERM");
    await until(
      "builder offline",
      seen((e) => e.type === "agent_offline" && e.payload.agent === "builder"),
    );
    await watch.stop();
  } finally {
    await killAllSwarms();
    await nc.close().catch(() => undefined);
    await server.stop();
    await sleep(100);
  }
  return { captured, deadLetters, ws };
}

// ---------------------------------------------------------------- examples

/** The example shown for each type: the most readable real one. */
function pickExamples(captured: Captured[]): Map<EventType, Captured[]> {
  const byMission = new Map<string, string>(); // mission id → title
  for (const { event } of captured)
    if (event.type === "mission_planned" && event.mission_id)
      byMission.set(event.mission_id, event.payload.title);
  const titled = (e: SquadEvent, word: string) =>
    e.mission_id !== null && (byMission.get(e.mission_id) ?? "").includes(word);
  const demo = (e: SquadEvent) => titled(e, "Demo");
  const failing = (e: SquadEvent) => titled(e, "fails");
  const prefer: Partial<Record<EventType, (e: SquadEvent) => boolean>> = {
    mission_submitted: (e) => e.type === "mission_submitted" && e.payload.source_path !== null,
    mission_planned: failing,
    wave_started: demo,
    wave_completed: demo,
    task_assigned: (e) => demo(e) && e.task_id === "slugify",
    task_started: (e) => demo(e) && e.task_id === "slugify",
    // A step with output shows what `output` holds.
    task_progress: (e) =>
      demo(e) && e.type === "task_progress" && e.payload.step.output.trim().length > 40,
    task_completed: (e) => demo(e) && e.task_id === "slugify",
    task_failed: failing,
    agent_online: (e) => e.type === "agent_online" && e.payload.agent === "builder",
    agent_heartbeat: (e) => e.type === "agent_heartbeat" && e.payload.agent === "builder",
    // A rebase shows more than a fast-forward (merged differs from commit).
    task_merged: (e) => e.type === "task_merged" && !e.payload.fast_forward,
  };
  const out = new Map<EventType, Captured[]>();
  for (const type of EVENT_TYPES) {
    const all = captured.filter((c) => c.event.type === type);
    if (type === "mission_cancelled") {
      // Both halves: the request anyone may send, and the orchestrator's final event.
      const request = all.find((c) => c.event.source !== "orchestrator");
      const final = all.find((c) => c.event.source === "orchestrator");
      out.set(
        type,
        [request, final].filter((c): c is Captured => c !== undefined),
      );
      continue;
    }
    const p = prefer[type];
    const chosen = (p && all.find((c) => p(c.event))) ?? all[0];
    if (chosen) out.set(type, [chosen]);
  }
  return out;
}

/** Long strings cut (the brief, command output), the temp workspace replaced by a placeholder. */
function presentable(value: unknown, ws: string): unknown {
  if (typeof value === "string") {
    const s = value.split(ws).join(WORKSPACE_PLACEHOLDER);
    return s.length > STRING_LIMIT
      ? `${s.slice(0, STRING_LIMIT)}…[${s.length - STRING_LIMIT} more characters]`
      : s;
  }
  if (Array.isArray(value)) return value.map((v) => presentable(v, ws));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, presentable(v, ws)]));
  return value;
}

// ---------------------------------------------------------------- field tables

type JsonSchema = {
  type?: string | string[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  format?: string;
};

function typeText(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeText).join(" \\| ");
  if (s.enum) return s.enum.map((v) => `"${String(v)}"`).join(" \\| ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const t = Array.isArray(s.type) ? s.type : [s.type ?? "any"];
  return t
    .map((one) => {
      if (one === "array") return `array of ${s.items ? typeText(s.items) : "any"}`;
      if (one === "object" && !s.properties && typeof s.additionalProperties === "object")
        return `object of ${typeText(s.additionalProperties)}`;
      if (one === "integer" && s.minimum !== undefined && s.minimum >= 0)
        return s.minimum === 0 ? "integer ≥ 0" : `integer ≥ ${s.minimum}`;
      if (one === "string" && s.format === "date-time") return "ISO 8601 string";
      return one;
    })
    .join(" \\| ");
}

function payloadFields(type: EventType): Array<{ name: string; type: string; required: boolean }> {
  const schema = z.toJSONSchema(EventPayloads[type], {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, s]) => ({
    name,
    type: typeText(s),
    required: required.has(name),
  }));
}

// ---------------------------------------------------------------- prose

const SUBJECT_OF: Record<EventType, string> = {
  mission_submitted: "squad.missions.submit",
  task_assigned: "squad.tasks.<agent>",
  agent_online: "squad.status.<agent>.<instance>",
  agent_heartbeat: "squad.status.<agent>.<instance>",
  agent_offline: "squad.status.<agent>.<instance>",
  mission_planned: "squad.coordination",
  mission_completed: "squad.coordination",
  mission_failed: "squad.coordination",
  mission_cancelled: "squad.coordination",
  wave_started: "squad.coordination",
  wave_completed: "squad.coordination",
  task_started: "squad.coordination",
  task_progress: "squad.coordination",
  task_model_called: "squad.coordination",
  task_completed: "squad.coordination",
  task_failed: "squad.coordination",
  task_merged: "squad.coordination",
  task_conflicted: "squad.coordination",
  approval_requested: "squad.coordination",
  approval_resolved: "squad.coordination",
};

const STREAM_OF: Record<string, string> = {
  "squad.missions.submit": "SQUAD_MISSIONS",
  "squad.tasks.<agent>": "SQUAD_TASKS",
  "squad.status.<agent>.<instance>": "SQUAD_STATUS",
  "squad.coordination": "SQUAD_EVENTS",
};

const ABOUT: Record<EventType, { by: string; text: string }> = {
  mission_submitted: {
    by: "any client (`swarm submit`, `scripts/deploy-swarm`, your program)",
    text: "A brief to run. The submitter chooses the mission id, so it can start following the mission before the orchestrator has seen it. Taken from the work queue by one orchestrator, which acks it once the mission is planned (or failed); it is not kept in SQUAD_EVENTS.",
  },
  mission_planned: {
    by: "orchestrator",
    text: "The plan the mission runs: the brief's explicit plan (`planner: null`) or the planner model's. `revision` 0 is the first plan; a replan after failures publishes revision 1, 2, ... with the tasks still to do. `plan` has the contract's plan shape with every default filled in (`depends_on` explicit, `timeout_s`, `max_attempts`).",
  },
  mission_completed: {
    by: "orchestrator",
    text: "Final: every task succeeded. `report` is the path of the Markdown report (a `.json` twin sits beside it).",
  },
  mission_failed: {
    by: "orchestrator",
    text: "Final: a task failed for good and no revised plan could save the mission, the budget ran out, or the brief could not be planned (then only `reason` is set).",
  },
  mission_cancelled: {
    by: "anyone who asks (`swarm cancel` uses source `cli`), then the orchestrator",
    text: 'Two kinds with one type. A request has any `source` but "orchestrator"; the orchestrator stops dispatching, workers abort the mission\'s running attempts, and the mission ends with a `mission_cancelled` whose `source` is "orchestrator". Only that one is final.',
  },
  wave_started: {
    by: "orchestrator",
    text: "The first task of a wave was dispatched. Waves overlap: a task starts as soon as its own dependencies succeeded, so wave 2 may start before wave 1 completes.",
  },
  wave_completed: {
    by: "orchestrator",
    text: "Every task of the wave has its final outcome.",
  },
  task_assigned: {
    by: "orchestrator",
    text: "One attempt of one task, on the agent's work queue. Exactly one replica of the agent gets it (durable consumer `worker-<agent>`); it is redelivered if that replica dies. `inputs` holds the result summaries of the task's dependencies. Not in SQUAD_EVENTS: a watcher sees it live on `squad.tasks.<agent>` (`nats sub squad.tasks.>` or `swarm watch`).",
  },
  task_started: {
    by: "worker replica (`<agent>/<instance>`)",
    text: "A replica claimed the attempt and started it. `delivery` counts JetStream deliveries of the same message (more than 1 after a replica died or handed it back).",
  },
  task_progress: {
    by: "worker replica",
    text: "One step of the attempt: a `run` command, or a tool call of the model (`run_shell`, `read_file`, `write_file`, `list_files`, `search_files`). `output` is truncated.",
  },
  task_model_called: {
    by: "worker replica",
    text: "One model call of a model-driven attempt, published as it ends (before the tool steps it asked for, which follow as `task_progress`): its tokens, its duration, the names of the tools it asked for, its reply text (cut, head and tail kept) and why the model stopped when its server said. `steps_before` is how many steps of the attempt came before it, so a client can put model calls and steps in one timeline. A call the model-call budget stopped, or that failed, has none; the result's `usage` is the sum over the attempt. The example below is synthetic (the recorded missions run no model); tests/workers/worker-model.test.ts checks real ones.",
  },
  task_completed: {
    by: "worker replica",
    text: "The attempt succeeded: the work ran and every `verify` command exited 0.",
  },
  task_failed: {
    by: "worker replica (or the orchestrator, for an attempt that timed out)",
    text: "The attempt failed. The orchestrator retries it (a new `task_assigned` with `attempt` + 1) while attempts remain and `retryable` is not false.",
  },
  task_merged: {
    by: "orchestrator (its merge queue)",
    text: "A succeeded attempt's commit (`result.changes.commit`) is on the mission branch. Tasks are integrated one at a time in the order their results arrive: a fast-forward when the attempt's base is still the head (`merged` = `commit`), else a rebase onto the head (`merged` is the new commit) after which the task's `verify` commands ran again on the merged tree. `head` is the branch's head after it; dependents start from a head that holds it. A task that changed nothing has no commit and no `task_merged`.",
  },
  task_conflicted: {
    by: "orchestrator (its merge queue)",
    text: "A succeeded attempt could not be integrated onto `onto`: its changes conflict with the head (`reason: conflict`, `files` the conflicting paths) or its `verify` failed on the merged tree (`verify_failed`). It counts as a failed attempt: the task gets a new `task_assigned` on the new head while attempts remain, then the mission is replanned with the conflicting files in the planner's input.",
  },
  agent_online: {
    by: "worker replica",
    text: "A replica started. `model` is the model spec it uses for tasks without a `run` list (an empty `run: []` needs no model either).",
  },
  agent_heartbeat: {
    by: "worker replica",
    text: "Every 5 s by default. A replica whose last heartbeat is older than 3 intervals is stale (`swarm status`). SQUAD_STATUS keeps only the last message per subject.",
  },
  agent_offline: {
    by: "worker replica",
    text: "A replica stopped cleanly (after finishing or handing back its work). A replica that crashed says nothing: its heartbeats stop.",
  },
  approval_requested: {
    by: "reserved: nothing emits it yet",
    text: "A worker asks a person to allow a command its policy does not allow by itself. The schema is fixed; the example below is synthetic (tests/helpers/example-events.ts), not from a run.",
  },
  approval_resolved: {
    by: "reserved: nothing emits it yet",
    text: "The answer to an `approval_requested` (`approved`, `denied` or `timed_out`), with the person's optional `reason` (`swarm deny --reason`), which a denied task sees in its error. The example below is synthetic.",
  },
};

const FIELD_NOTES: Record<string, string> = {
  "mission_submitted.brief": "the whole Markdown text; the orchestrator parses it",
  "mission_submitted.source_path":
    "where the brief came from, for the report; null for an inline brief",
  "mission_planned.plan": "the plan, see docs/schema/plan.schema.json",
  "mission_planned.planner": "model spec, null for an explicit plan",
  "mission_planned.budget": "from the brief: `tokens`, `time_s`",
  "mission_planned.submitted_at": "the submission's timestamp; the time budget counts from here",
  "mission_planned.submitted_by":
    "the submission's `source` (`cli`, a program's name), for the mission lists",
  "mission_completed.tasks": "`{ total, succeeded, failed }`",
  "mission_completed.usage": "tokens of every task and the planner",
  "mission_failed.failed_tasks": "`[{ id, error }]`",
  "mission_cancelled.requested_by": "who asked (`cli`, a user name...)",
  "task_assigned.task":
    "the task, see docs/schema/task.schema.json: `id, agent, wave, title, instructions, depends_on, acceptance, run?, verify?, inputs, timeout_s, attempt, max_attempts`",
  "task_progress.step": "`{ tool, args, ok, exit_code?, duration_ms, output }`",
  "task_model_called.call": "the call's number in the attempt, from 1",
  "task_model_called.model": "model spec of the call (`ollama:qwen2.5:7b`)",
  "task_model_called.input_tokens": "prompt tokens of this call, as the model server counted",
  "task_model_called.output_tokens": "tokens of its reply",
  "task_model_called.duration_ms": "from the request to the whole reply",
  "task_model_called.tool_calls":
    "names of the tools it asked for, in order (empty: a text answer)",
  "task_model_called.text": "its reply text, cut to about 2 KiB (head and tail kept, with a note)",
  "task_model_called.finish_reason":
    "why the model stopped (`stop`, `tool_calls`, `length`...), when its server said",
  "task_model_called.steps_before":
    "steps (`task_progress`) of the attempt before this call: its place in the attempt's timeline",
  "task_completed.result":
    "see docs/schema/task-result.schema.json: `status, summary, error?, steps, verification, usage, attempt, duration_ms, worker, retryable?`",
  "task_failed.result": 'as for task_completed, with `status: "failed"` and `error`',
  "agent_heartbeat.in_flight": "attempts running now",
  "agent_heartbeat.completed": "attempts this replica completed since it started",
  "agent_heartbeat.failed": "attempts this replica failed since it started",
  "approval_requested.timeout_s": "after this the request resolves as `timed_out`",
  "task_merged.commit": "the attempt's own commit (`result.changes.commit`)",
  "task_merged.merged":
    "the commit now on the branch for it: `commit` on a fast-forward, else the rebased commit (same author, message and trailers; committer the orchestrator)",
  "task_merged.onto": "the head it was integrated onto",
  "task_merged.head": "the mission branch's head after it (dependents start here)",
  "task_merged.fast_forward": "true when the attempt's base was the head",
  "task_conflicted.commit": "the attempt's commit, which is not on the branch",
  "task_conflicted.onto":
    "the head it could not be integrated onto (the retry starts from the head)",
  "task_conflicted.reason":
    "`conflict`: its changes conflict with the head; `verify_failed`: its `verify` failed on the merged tree",
  "task_conflicted.files": "the conflicting paths (none for `verify_failed`)",
  "task_conflicted.error": "git's conflict messages, or the failing check and its output",
  "mission_completed.head": "the mission branch's final head (git workspaces)",
  "mission_failed.head": "the branch's head when it failed: merged tasks only",
  "mission_cancelled.head": "the branch's head when it was cancelled (the orchestrator's event)",
  "mission_submitted.workspace":
    "the mission repository's base: `{ base, source: git|directory|empty, path, branch? }`",
  "mission_planned.workspace": "copied from the submission: where the mission branch starts",
};

/** Fields with the same meaning wherever they appear. */
const COMMON_FIELD_NOTES: Record<string, string> = {
  title: "the mission's title (the brief's `title`, else its first heading)",
  revision: "0 for the first plan, n for the n-th revised plan",
  source_path: "path of the brief file, null for an inline brief",
  summary: "one line for people",
  duration_ms: "from submission to the end",
  report: "path of the Markdown report, `<SWARM_WORKSPACE>/reports/<mission>.md`",
  usage: "`{ input_tokens, output_tokens }` summed over the mission",
  tasks: "`{ total, succeeded, failed }`",
  reason: "why, for people",
  wave: "wave number, from 1",
  task_ids: "the tasks of the wave",
  succeeded: "task ids that succeeded",
  failed: "task ids that failed",
  attempt: "attempt number of the task, from 1",
  worker: "`<agent>/<instance>` of the replica",
  delivery: "JetStream delivery count of the task message (1 = first delivery)",
  agent: "roster name of the agent",
  instance: "id of the replica process",
  pid: "its process id",
  host: "its host name",
  concurrency: "attempts it runs at once",
  model: "model spec for model-driven tasks",
  version: "squad version of the replica",
  uptime_s: "seconds since the replica started",
  approval_id: "id shared by the request and its answer",
  command: "the shell command waiting for approval",
  decision: "the answer",
  by: "who answered",
};

const ENVELOPE_FIELDS: Array<[string, string, string]> = [
  ["schema", "1", "version of the envelope; bumped only on an incompatible change"],
  [
    "id",
    "string (1-200)",
    "unique per event; also its `Nats-Msg-Id`, so a re-published event is stored once",
  ],
  ["type", "string", "one of the types below; more may be added (ignore types you don't know)"],
  ["mission_id", "string \\| null", "`[A-Za-z0-9_-]{1,80}`; null on status events"],
  ["task_id", "string \\| null", "same pattern; set on task events"],
  ["source", "string", "`orchestrator`, `<agent>/<instance>` (a worker replica) or `cli`"],
  ["target", "string \\| null", "the agent a `task_assigned` is for"],
  ["timestamp", "ISO 8601 string", "when the publisher made the event (its clock)"],
  [
    "correlation_id",
    "string \\| null",
    "on worker events: the id of the `task_assigned` they answer",
  ],
  ["payload", "object", "typed by `type`, below"],
];

// ---------------------------------------------------------------- the document

function render(
  examples: Map<EventType, Captured[]>,
  deadLetter: DlqRecord | undefined,
  ws: string,
  generatedAt: string,
): string {
  const json = (v: unknown) => "```json\n" + JSON.stringify(presentable(v, ws), null, 2) + "\n```";
  const L: string[] = [];
  L.push(
    "# Squad events: the contract for clients",
    "",
    "<!-- Generated by `node scripts/gen-events-doc.ts`; edit the script, not this file. -->",
    "",
    "Everything the swarm does is a JSON event on NATS subjects under `squad.>`. A program in any",
    "language that speaks NATS can submit a mission, follow it, and read its outcome; this page is all",
    "it needs. The JSON Schema of every event, generated from the zod schemas the swarm itself",
    "validates with, is in [`docs/schema/`](schema/) (`event.schema.json` for any event,",
    "`events/<type>.schema.json` per type, plus `plan`, `task` and `task-result`).",
    "",
    `The examples are real: recorded by \`scripts/gen-events-doc.ts\` from a run of this checkout on ${generatedAt.slice(0, 10)}`,
    "(the demo brief `mission-briefs/demo-library.md`, a mission whose check fails, one cancelled, and one through the merge queue",
    `with \`swarm cancel\`). Long strings are cut (\`…[N more characters]\`) and the workspace path is`,
    `shown as \`${WORKSPACE_PLACEHOLDER}\`. The two \`approval_*\` examples are synthetic (the recorded missions ask for no approval; tests/security/approvals.test.ts runs real ones), and so is \`task_model_called\` (they run no model).`,
    "In the merge-queue example the tasks' commits and results come from the script itself, standing in for a",
    "`reviewer` replica; the `task_merged` and `task_conflicted` answers are the orchestrator's own.",
    "",
    "## Contents",
    "",
    "- [The envelope](#the-envelope)",
    "- [Subjects and streams](#subjects-and-streams)",
    "- [Submit a mission from any language](#submit-a-mission-from-any-language)",
    "- [Follow a mission](#follow-a-mission)",
    "- [Cancel a mission](#cancel-a-mission)",
    "- [Event types](#event-types)",
    ...EVENT_TYPES.map((t) => `  - [\`${t}\`](#${t})`),
    "- [Dead-letter records](#dead-letter-records)",
    "- [The mission view](#the-mission-view)",
    "- [Compatibility](#compatibility)",
    "",
    "## The envelope",
    "",
    "Every message on `squad.>` (except dead-letter records, below) is one UTF-8 JSON object:",
    "",
    "| field | type | meaning |",
    "|---|---|---|",
    ...ENVELOPE_FIELDS.map(([f, t, m]) => `| \`${f}\` | ${t} | ${m} |`),
    "",
    "Publishers also set two headers, so a subscriber can filter without decoding:",
    "`Squad-Type` (the event type) and `Squad-Mission` (the mission id, when there is one).",
    'With tracing on (OTEL_*, docs/operations.md "Observability"), an event of a',
    "mission also carries the W3C trace context, `traceparent` and `tracestate`;",
    "the signature does not cover them.",
    "",
    "## Subjects and streams",
    "",
    "| subject | stream | retention | carries |",
    "|---|---|---|---|",
    "| `squad.missions.submit` | SQUAD_MISSIONS | work queue (deleted once an orchestrator took it) | `mission_submitted` |",
    "| `squad.coordination` | SQUAD_EVENTS | limits, max age 7 days by default (`SWARM_EVENTS_MAX_AGE_S`) | every mission, wave, task and approval event except `task_assigned`: the audit trail |",
    "| `squad.tasks.<agent>` | SQUAD_TASKS | work queue, one durable pull consumer `worker-<agent>` per agent | `task_assigned` |",
    "| `squad.status.<agent>.<instance>` | SQUAD_STATUS | last message per subject | `agent_online`, `agent_heartbeat`, `agent_offline` |",
    "| `squad.dlq.<agent>` | SQUAD_DLQ | limits | dead-letter records (not events) |",
    "",
    "Every stream dedupes on the `Nats-Msg-Id` header within 2 minutes. `<agent>` is a roster name",
    "(`[a-z0-9_-]{1,64}`); `<instance>` identifies one replica process.",
    "",
    "## Submit a mission from any language",
    "",
    "Publish a `mission_submitted` event on `squad.missions.submit` through JetStream (a publish with a",
    "reply subject, so the server answers with an acknowledgement), with the `Nats-Msg-Id` header set to",
    "the event id: a retried publish is then stored once. Choose the mission id yourself",
    "(`[A-Za-z0-9_-]{1,80}`, unique): you can follow the mission before the orchestrator has seen it.",
    "The orchestrator parses and validates the brief; a brief it can't run ends in `mission_failed`",
    "with the reason.",
    "",
    "With the `nats` CLI:",
    "",
    "```sh",
    "ID=m-$(date -u +%Y%m%d-%H%M%S)-$RANDOM",
    `jq -n --arg id "$ID" --rawfile brief mission-briefs/demo-library.md '{`,
    `  schema: 1, id: "\\($id).submitted", type: "mission_submitted", mission_id: $id,`,
    `  task_id: null, source: "cli", target: null, correlation_id: null,`,
    `  timestamp: (now | todate), payload: { brief: $brief, source_path: null } }' > /tmp/submit.json`,
    `nats request squad.missions.submit "$(cat /tmp/submit.json)" -H "Nats-Msg-Id:$ID.submitted"`,
    `# → {"stream":"SQUAD_MISSIONS","seq":1}`,
    "```",
    "",
    "In Python ([nats-py](https://github.com/nats-io/nats.py)):",
    "",
    "```python",
    "import datetime, json, secrets, nats",
    "",
    "async def submit(brief: str) -> str:",
    "    now = datetime.datetime.now(datetime.timezone.utc)",
    '    mission = f"m-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"',
    "    event = {",
    '        "schema": 1, "id": f"{mission}.submitted", "type": "mission_submitted",',
    '        "mission_id": mission, "task_id": None, "source": "cli", "target": None,',
    '        "timestamp": now.isoformat(),',
    '        "correlation_id": None, "payload": {"brief": brief, "source_path": None},',
    "    }",
    '    nc = await nats.connect("nats://127.0.0.1:4222")',
    "    js = nc.jetstream()",
    '    await js.publish("squad.missions.submit", json.dumps(event).encode(),',
    '                     headers={"Nats-Msg-Id": event["id"]})',
    "    await nc.close()",
    "    return mission",
    "```",
    "",
    "`swarm submit <brief.md>` does the same and prints the mission id.",
    "",
    "## Follow a mission",
    "",
    "Live: subscribe to `squad.coordination` (`nats sub squad.coordination`) and keep the events whose",
    "`mission_id` is yours; add `squad.tasks.>` to see the `task_assigned` events too, or `squad.>` for",
    "everything. The mission is over at its final event: `mission_completed`, `mission_failed`, or",
    '`mission_cancelled` **with `source` "orchestrator"** (a `mission_cancelled` from anyone else is',
    "only a request).",
    "",
    "A core subscription misses what is published while it is disconnected. To never miss an event,",
    "read SQUAD_EVENTS instead: an ordered consumer (deliver all, or from a stream sequence) filtered to",
    "`squad.coordination` replays the mission's history in order and continues live. Take the stream's",
    "`last_seq` before you submit and start from `last_seq + 1` to see only what follows.",
    "",
    "```sh",
    "nats sub squad.coordination                       # live, raw JSON",
    "nats stream view SQUAD_EVENTS                     # the recorded history",
    'swarm watch --json --mission "$ID"               # history, then live; exits 0 if it completed',
    "swarm status --json                               # agents, backlog, missions and their state",
    "```",
    "",
    "## Cancel a mission",
    "",
    "Publish a `mission_cancelled` on `squad.coordination` with your own `source` (`swarm cancel` uses",
    '`"cli"`) and `payload: { "reason": "...", "requested_by": "..." }`. The orchestrator stops',
    "dispatching, the workers abort the mission's running attempts, and the orchestrator publishes the",
    'final `mission_cancelled` with `source` "orchestrator". `swarm cancel <mission> --wait` does',
    "this and waits for that final event.",
    "",
    "## Event types",
    "",
    "| type | subject | stream | published by |",
    "|---|---|---|---|",
    ...EVENT_TYPES.map(
      (t) =>
        `| [\`${t}\`](#${t}) | \`${SUBJECT_OF[t]}\` | ${STREAM_OF[SUBJECT_OF[t]]} | ${ABOUT[t].by} |`,
    ),
    "",
  );

  for (const type of EVENT_TYPES) {
    L.push(`### ${type}`, "", `Subject \`${SUBJECT_OF[type]}\`. Published by: ${ABOUT[type].by}.`);
    L.push(
      "",
      ABOUT[type].text,
      "",
      "| payload field | type | required | meaning |",
      "|---|---|---|---|",
    );
    for (const f of payloadFields(type)) {
      L.push(
        `| \`${f.name}\` | ${f.type} | ${f.required ? "yes" : "no"} | ${FIELD_NOTES[`${type}.${f.name}`] ?? COMMON_FIELD_NOTES[f.name] ?? ""} |`,
      );
    }
    L.push(
      "",
      `Schema: [\`docs/schema/events/${type}.schema.json\`](schema/events/${type}.schema.json)`,
    );
    const shown = examples.get(type) ?? [];
    for (const c of shown) {
      const label =
        type === "mission_cancelled"
          ? c.event.source === "orchestrator"
            ? "The orchestrator's final event"
            : `A request (source \`${c.event.source}\`, from \`swarm cancel\`)`
          : type.startsWith("approval_")
            ? "Synthetic example (nothing emits this type yet)"
            : type === "task_model_called"
              ? "Synthetic example (the recorded missions run no model)"
              : `Example (on \`${c.subject}\`)`;
      L.push("", `${label}:`, "", json(c.event));
    }
    L.push("");
  }

  const dlqSchema = z.toJSONSchema(DlqRecord, {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  const dlqRequired = new Set(dlqSchema.required ?? []);
  const dlqNotes: Record<string, string> = {
    reason: "why it was refused, e.g. `not JSON: ...` or the schema problem",
    agent: "the agent whose consumer refused it (`orchestrator` for a bad submission)",
    subject: "where the message was published",
    stream_seq:
      "its sequence in SQUAD_TASKS (or SQUAD_MISSIONS); the record's `Nats-Msg-Id` is `dlq-<stream_seq>`",
    delivery_count: "deliveries of the message so far",
    received_at: "when it was dead-lettered",
    data: "the original bytes as text, cut at 64 KiB",
    data_base64: "the original bytes, only when they are not valid UTF-8",
    original_bytes: "size of the original, only when `data` was cut",
  };
  L.push(
    "## Dead-letter records",
    "",
    "A message a worker (or the orchestrator) can't use at all (not JSON, not a valid event, the wrong",
    "type or agent) is copied to `squad.dlq.<agent>` (stream SQUAD_DLQ) and removed from its queue, so",
    "it can't block the queue or be retried forever. A record is not an event: it has no envelope.",
    "`swarm watch` shows records as `DEAD LETTER` lines, and `swarm status` counts them per agent.",
    "",
    "| field | type | required | meaning |",
    "|---|---|---|---|",
    ...Object.entries(dlqSchema.properties ?? {}).map(
      ([name, s]) =>
        `| \`${name}\` | ${typeText(s)} | ${dlqRequired.has(name) ? "yes" : "no"} | ${dlqNotes[name] ?? ""} |`,
    ),
    "",
  );
  if (deadLetter) {
    L.push(
      "Example (on `squad.dlq.builder`; someone published plain text on `squad.tasks.builder`):",
      "",
      json(deadLetter),
      "",
    );
  }
  const viewTable = (schema: z.ZodType, notes: Record<string, string>) => {
    const js = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
    const req = new Set(js.required ?? []);
    return Object.entries(js.properties ?? {}).map(
      ([name, s]) =>
        `| \`${name}\` | ${typeText(s)} | ${req.has(name) ? "yes" : "no"} | ${notes[name] ?? ""} |`,
    );
  };
  L.push(
    "## The mission view",
    "",
    "Where every mission stands, without reading SQUAD_EVENTS: the KV bucket `squad_mission_view`",
    "(stream `KV_squad_mission_view`, history 1), kept by the orchestrators as they read the events",
    "(derived from them, never the other way round; delete the bucket and the next orchestrator start",
    "rebuilds it from the stream). `swarm status` and the dashboard read it; a client in any language",
    "can too, with the watcher's or the operator's credentials (direct get of",
    "`$KV.squad_mission_view.<key>`). Only the orchestrator may write it.",
    "",
    "| key | value |",
    "|---|---|",
    "| `index` | the unfinished missions (`active`, with their first sequence), the last 1000 finished (`finished`, oldest first), and `watermark`: every event of SQUAD_EVENTS up to it is in the view |",
    "| `mission.<mission_id>` | one mission's summary, updated as its events arrive (a finished mission's key stays after it leaves the index) |",
    "",
    "Every value has `schema: 1` (a reader that finds another number must say so, not guess). JSON",
    "Schema: `docs/schema/mission-view/index.schema.json`, `docs/schema/mission-view/mission.schema.json`.",
    "Writes are compare-and-set on the key's revision and idempotent by stream sequence (`last_seq`):",
    "several orchestrators fold the same events and agree.",
    "",
    "`mission.<mission_id>`:",
    "",
    "| field | type | required | meaning |",
    "|---|---|---|---|",
    ...viewTable(MissionSummaryValue, {
      state: "`submitted`, `planned`, `running`, `completed`, `failed`, `cancelled`",
      cancel_requested: "a cancel was asked for and the orchestrator has not answered yet",
      tasks:
        "`{ total, succeeded, failed, running }` of the plan in force (the final event's totals once it ended)",
      submitted_by: "`mission_planned.submitted_by`",
      started_at: "the first `wave_started`",
      ended_at: "the orchestrator's final event",
      usage: "the final event's `usage`",
      tokens: "the tasks' results' tokens by model spec (`run-only` without a model)",
      first_seq: "SQUAD_EVENTS sequence of its first event (where a resume reads from)",
      last_seq: "sequence of the last event folded in: older ones are not applied again",
      plan_tasks: "bookkeeping of the fold: the plan's task ids",
      task_states: "bookkeeping of the fold: each task's latest state",
      counts_final: "bookkeeping of the fold: `tasks` came from the final event",
    }),
    "",
    "`index`:",
    "",
    "| field | type | required | meaning |",
    "|---|---|---|---|",
    ...viewTable(MissionViewIndex, {
      watermark: "every event up to this SQUAD_EVENTS sequence is in the view",
      active: "`[{ mission_id, first_seq }]`: planned, unfinished missions",
      finished: "mission ids, oldest first, the last 1000",
    }),
    "",
  );
  L.push(
    "## Compatibility",
    "",
    "- `schema` is 1. Fields and event types may be added within version 1; none is renamed or",
    "  removed. Ignore fields and types you don't know.",
    "- Validate what you read: the JSON Schema in `docs/schema/` is generated from the same zod schemas",
    "  the swarm validates every message with (`node scripts/export-schema.ts`, checked by a test).",
    "- Ids are chosen by publishers; a re-published event keeps its id and JetStream stores it once",
    "  (within the 2-minute duplicate window).",
    "",
  );
  return L.join("\n");
}

// ---------------------------------------------------------------- main

const { captured, deadLetters, ws } = await record();
const examples = pickExamples(captured);
/** Types the recorded run can't show: their examples are tests/helpers/example-events.ts'. */
const SYNTHETIC = new Set<EventType>([
  "approval_requested",
  "approval_resolved",
  "task_model_called",
]);
for (const e of exampleEvents())
  if (SYNTHETIC.has(e.type)) examples.set(e.type, [{ event: e, subject: "squad.coordination" }]);
const missing = EVENT_TYPES.filter((t) => !examples.has(t));
if (missing.length) throw new Error(`no example recorded for: ${missing.join(", ")}`);
if (!deadLetters[0]) throw new Error("no dead-letter record was recorded");
// Formatted like every other file of the repo, so `prettier --check docs` passes.
const markdown = await prettier.format(
  render(examples, deadLetters[0], ws, new Date().toISOString()),
  {
    ...(await prettier.resolveConfig(OUT)),
    parser: "markdown",
  },
);
await writeFile(OUT, markdown);
await rm(ws, { recursive: true, force: true });
console.log(`wrote ${path.relative(process.cwd(), OUT)} (${captured.length} events recorded)`);
