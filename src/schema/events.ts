import { z } from "zod";
import { AgentName, CommitId, MissionId, TaskId } from "./identifiers.ts";
import { Plan } from "./plan.ts";
import { Task } from "./task.ts";
import { Step, TaskResult } from "./result.ts";

/** Version of the envelope; bumped only on an incompatible change. */
export const SCHEMA_VERSION = 1;

const Counts = z.object({
  total: z.number().int().nonnegative(),
  succeeded: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
});
const Tokens = z.object({
  input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
});

/**
 * Where a mission's repository starts: its base commit and what it was made
 * from. The submitter makes it (only its machine has the brief's
 * directory) and uploads it as a bundle (`squad_bundles`, `<mission>/<base>`).
 */
export const MissionWorkspace = z.object({
  base: CommitId,
  /** git: the brief's workspace repository at HEAD; directory: a first commit of its files; empty: no workspace. */
  source: z.enum(["git", "directory", "empty"]),
  /** The brief's workspace directory on the submitter's machine (where delivery goes), if any. */
  path: z.string().nullable(),
  /** For git: the branch HEAD was on (null when detached). */
  branch: z.string().nullable().optional(),
});
export type MissionWorkspace = z.infer<typeof MissionWorkspace>;

/** Payload schemas by event type: the typed half of the contract. */
export const EventPayloads = {
  mission_submitted: z.object({
    /** The whole Markdown text of the brief; the orchestrator parses it. */
    brief: z.string().min(1, "the brief is empty"),
    source_path: z.string().nullable(),
    /** The mission repository's base (absent from submitters before git workspaces). */
    workspace: MissionWorkspace.optional(),
  }),
  mission_planned: z.object({
    title: z.string(),
    plan: Plan,
    /** Model spec, or null for an explicit plan from the brief. */
    planner: z.string().nullable(),
    /** 0 for the first plan, n for the n-th replan. */
    revision: z.number().int().nonnegative().default(0),
    /** From the brief; recorded so a restarted orchestrator rebuilds the same mission. */
    budget: z
      .object({
        tokens: z.number().int().positive().optional(),
        time_s: z.number().positive().optional(),
      })
      .optional(),
    /** When the mission was submitted: the time budget counts from here. */
    submitted_at: z.iso.datetime({ offset: true }).optional(),
    /** The submission's `source` (`cli`, a program's name): who asked, for the mission lists. */
    submitted_by: z.string().optional(),
    source_path: z.string().nullable().optional(),
    /** Copied from the submission, so a restarted orchestrator and every replica agree on the base. */
    workspace: MissionWorkspace.optional(),
  }),
  mission_completed: z.object({
    summary: z.string(),
    tasks: Counts,
    duration_ms: z.number().nonnegative(),
    usage: Tokens,
    report: z.string().nullable(),
    /** The mission branch's final head (absent without git workspaces). */
    head: CommitId.optional(),
  }),
  mission_failed: z.object({
    reason: z.string(),
    failed_tasks: z.array(z.object({ id: TaskId, error: z.string() })).default([]),
    tasks: Counts.optional(),
    duration_ms: z.number().nonnegative().optional(),
    usage: Tokens.optional(),
    report: z.string().nullable().optional(),
    /** The mission branch's head when it failed: the partial work, merged tasks only. */
    head: CommitId.optional(),
  }),
  mission_cancelled: z.object({
    reason: z.string(),
    requested_by: z.string().optional(),
    /** The mission branch's head when it was cancelled (orchestrator only). */
    head: CommitId.optional(),
  }),
  wave_started: z.object({ wave: z.number().int().min(1), task_ids: z.array(TaskId) }),
  wave_completed: z.object({
    wave: z.number().int().min(1),
    succeeded: z.array(TaskId),
    failed: z.array(TaskId),
  }),
  task_assigned: z.object({ task: Task }),
  task_started: z.object({
    attempt: z.number().int().min(1),
    worker: z.string().min(1),
    /** JetStream delivery count of the message that carried this attempt. */
    delivery: z.number().int().min(1).optional(),
  }),
  task_progress: z.object({
    attempt: z.number().int().min(1),
    worker: z.string().min(1),
    step: Step,
  }),
  /**
   * One model call of a model-driven attempt, as it ended: what it cost and
   * what it said (the result's `usage` only sums them). Tool steps the call
   * asked for follow as task_progress. A call stopped by the model-call
   * budget, or that failed, has none.
   */
  task_model_called: z.object({
    attempt: z.number().int().min(1),
    worker: z.string().min(1),
    /** The call's number in the attempt, from 1 (a nudged run goes on counting). */
    call: z.number().int().min(1),
    /** Model spec (`ollama:qwen2.5:7b`). */
    model: z.string().min(1),
    input_tokens: z.number().int().nonnegative(),
    output_tokens: z.number().int().nonnegative(),
    duration_ms: z.number().nonnegative(),
    /** Names of the tools the model asked for, in its order (empty: it answered in text). */
    tool_calls: z.array(z.string()),
    /** The reply's text, cut (head and tail kept, with a note). */
    text: z.string(),
    /** Why the model stopped (`stop`, `tool_calls`, `length`...), when its server said. */
    finish_reason: z.string().optional(),
    /** Steps (task_progress) of the attempt before this call: its place in the attempt's timeline. */
    steps_before: z.number().int().nonnegative(),
  }),
  task_completed: z.object({ result: TaskResult }),
  task_failed: z.object({ result: TaskResult }),
  /** A succeeded attempt's commit is on the mission branch (the merge queue took it). */
  task_merged: z.object({
    attempt: z.number().int().min(1),
    /** The attempt's own commit (result.changes.commit). */
    commit: CommitId,
    /** The commit now on the branch for it: the same on a fast-forward, else the rebased one. */
    merged: CommitId,
    /** The head the task was integrated onto, and the branch's head after it. */
    onto: CommitId,
    head: CommitId,
    fast_forward: z.boolean(),
  }),
  /**
   * A succeeded attempt could not be integrated: its changes conflict with
   * the head, or its verify checks fail on the merged tree. It counts as a
   * failed attempt: the task is retried on the new head, then replanned.
   */
  task_conflicted: z.object({
    attempt: z.number().int().min(1),
    commit: CommitId,
    onto: CommitId,
    reason: z.enum(["conflict", "verify_failed"]),
    /** The conflicting paths (conflict), or none. */
    files: z.array(z.string()),
    error: z.string(),
  }),
  agent_online: z.object({
    agent: AgentName,
    instance: z.string().min(1),
    pid: z.number().int(),
    host: z.string(),
    concurrency: z.number().int().min(1),
    model: z.string().nullable(),
    version: z.string(),
  }),
  agent_heartbeat: z.object({
    agent: AgentName,
    instance: z.string().min(1),
    in_flight: z.number().int().nonnegative(),
    completed: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
    uptime_s: z.number().nonnegative(),
    /** Events this replica refused since start (forged, unsigned, from the wrong role). */
    refused_events: z.number().int().nonnegative().optional(),
    /** Bytes on disk of its task checkouts and mission cache repositories (last measured). */
    workspace_bytes: z.number().int().nonnegative().optional(),
  }),
  agent_offline: z.object({
    agent: AgentName,
    instance: z.string().min(1),
    reason: z.string(),
  }),
  approval_requested: z.object({
    approval_id: z.string().min(1),
    agent: AgentName,
    worker: z.string().min(1),
    command: z.string(),
    reason: z.string(),
    timeout_s: z.number().positive(),
  }),
  approval_resolved: z.object({
    approval_id: z.string().min(1),
    decision: z.enum(["approved", "denied", "timed_out"]),
    by: z.string(),
    /** Why the person decided so (`swarm deny --reason`, the dashboard's reason field); the task sees it. */
    reason: z.string().max(2000).optional(),
  }),
} as const;

export type EventType = keyof typeof EventPayloads;
export const EVENT_TYPES = Object.keys(EventPayloads) as EventType[];

/** Fields every message on `squad.>` carries. */
export const EnvelopeBase = z.object({
  schema: z.literal(SCHEMA_VERSION),
  id: z.string().min(1).max(200),
  mission_id: MissionId.nullable(),
  task_id: TaskId.nullable(),
  /** `orchestrator`, `<agent>/<instance>` or `cli`. */
  source: z.string().min(1),
  target: z.string().nullable(),
  timestamp: z.iso.datetime({ offset: true }),
  correlation_id: z.string().nullable(),
});

function eventSchema<T extends EventType>(type: T) {
  return EnvelopeBase.extend({ type: z.literal(type), payload: EventPayloads[type] });
}

const eventSchemas = {
  mission_submitted: eventSchema("mission_submitted"),
  mission_planned: eventSchema("mission_planned"),
  mission_completed: eventSchema("mission_completed"),
  mission_failed: eventSchema("mission_failed"),
  mission_cancelled: eventSchema("mission_cancelled"),
  wave_started: eventSchema("wave_started"),
  wave_completed: eventSchema("wave_completed"),
  task_assigned: eventSchema("task_assigned"),
  task_started: eventSchema("task_started"),
  task_progress: eventSchema("task_progress"),
  task_model_called: eventSchema("task_model_called"),
  task_completed: eventSchema("task_completed"),
  task_failed: eventSchema("task_failed"),
  task_merged: eventSchema("task_merged"),
  task_conflicted: eventSchema("task_conflicted"),
  agent_online: eventSchema("agent_online"),
  agent_heartbeat: eventSchema("agent_heartbeat"),
  agent_offline: eventSchema("agent_offline"),
  approval_requested: eventSchema("approval_requested"),
  approval_resolved: eventSchema("approval_resolved"),
} satisfies { [K in EventType]: ReturnType<typeof eventSchema<K>> };

/** Any event on `squad.>`, discriminated on `type`. */
export const SquadEvent = z.discriminatedUnion(
  "type",
  Object.values(eventSchemas) as [
    (typeof eventSchemas)[EventType],
    ...(typeof eventSchemas)[EventType][],
  ],
);
export type SquadEvent = z.infer<typeof SquadEvent>;
export type EventOf<T extends EventType> = Extract<SquadEvent, { type: T }>;
export type PayloadOf<T extends EventType> = z.infer<(typeof EventPayloads)[T]>;
/** What a caller gives to build a payload (defaults may be omitted). */
export type PayloadInput<T extends EventType> = z.input<(typeof EventPayloads)[T]>;

export { eventSchemas as EventSchemas };
