/**
 * The data of the mission state machine: its state, inputs and commands, and
 * the read-only views over a state (counts, summary) that the report and the
 * shell use. The transitions live in `mission-machine.ts`.
 *
 * Everything here is plain JSON-compatible data (no Maps, no Dates, no
 * functions), so a state can be cloned, compared, logged and stored.
 * Times are milliseconds since the epoch and always come from inputs.
 *
 * A state is immutable once a step returned it: the next step shares every
 * part it does not change (the plan, the other task records) and copies only
 * what it writes, so a step costs the same in a mission of 10 or 10,000 tasks.
 * Never modify a state in place.
 */
import type { MissionEndType } from "../schema/event-groups.ts";
import type { PayloadInput } from "../schema/events.ts";
import type { PlanInput } from "../schema/plan.ts";
import type { Changes, TaskResult, Usage } from "../schema/result.ts";
import type { Task } from "../schema/task.ts";
import type { NormalizedPlan, NormalizedTask } from "./plan-validation.ts";

/** `worker` of the results the orchestrator writes itself (timeouts). */
export const ORCHESTRATOR_WORKER = "orchestrator";

export interface MissionConfig {
  missionId: string;
  /** When the mission was submitted (ms); the time budget counts from here. */
  startedAt: number;
  budget: { tokens?: number; time_s?: number };
  /** A dispatched attempt that no worker has started after this long counts as failed. */
  startTimeoutS: number;
  /**
   * Extra time after a task's `timeout_s` before the orchestrator gives up on
   * a started attempt, so that the worker's own timeout report (with its
   * steps and output) normally arrives first.
   */
  resultGraceS: number;
  /** How many times a finally failed task may lead to a revised plan. */
  maxReplans: number;
  /** Where the report will be written; put in the final events. */
  reportPath: string | null;
}

export const DEFAULT_START_TIMEOUT_S = 60;
export const DEFAULT_RESULT_GRACE_S = 10;
export const DEFAULT_MAX_REPLANS = 2;

export type MissionStatus =
  | "planning"
  | "running"
  /** A task finally failed: in-flight attempts drain, then a revised plan is requested. */
  | "replanning"
  | "completed"
  | "failed"
  | "cancelled";
export type FinalStatus = "completed" | "failed" | "cancelled";

export type TaskStatus =
  | "pending"
  | "dispatched"
  | "running"
  /**
   * The attempt succeeded with a commit (`result.changes`): waiting for the
   * merge queue. Counts as succeeded only once merged (task_merged).
   */
  | "merging"
  | "succeeded"
  | "failed"
  /** Never dispatched because the mission ended first. */
  | "skipped"
  /** In flight when the mission ended. */
  | "cancelled"
  /** Dropped by a revised plan. */
  | "superseded";

export interface AttemptRecord {
  attempt: number;
  dispatchedAt: number;
  startedAt: number | null;
  worker: string | null;
  delivery: number | null;
  finishedAt: number | null;
  /** conflicted: it succeeded, but its commit could not be merged (task_conflicted). */
  outcome: "succeeded" | "failed" | "timed_out" | "aborted" | "conflicted" | null;
  summary: string | null;
  error: string | null;
  usage: Usage | null;
  /** A worker's result arrived after the orchestrator had timed this attempt out. */
  lateResult: boolean;
}

export interface TaskRecord {
  id: string;
  agent: string;
  wave: number;
  /** Plan revision this task belongs to. */
  revision: number;
  /** Part of the current plan (false once superseded, or a kept task the revision left out). */
  inPlan: boolean;
  spec: NormalizedTask;
  status: TaskStatus;
  /**
   * Attempt numbers continue across revisions, because `<mission>.<task>.<attempt>`
   * is the dedupe key of dispatches and worker claims: this revision's attempts
   * are `attemptBase + 1 .. maxAttempt`.
   */
  attemptBase: number;
  maxAttempt: number;
  attempts: AttemptRecord[];
  /** Summary of the successful result; dependents receive it as an input. */
  summary: string | null;
  /** Error of the final failure. */
  error: string | null;
  finishedAt: number | null;
  /** Its commit on the mission branch (task_merged's `merged`); null when it changed nothing. */
  commit: string | null;
}

export interface WaveRecord {
  wave: number;
  taskIds: string[];
  started: boolean;
  completed: boolean;
  /** Tasks of the wave neither succeeded nor failed: the wave completes at 0 (once started). */
  remaining: number;
}

export interface FailedTask {
  id: string;
  error: string;
  attempts: number;
  /** The files its last attempt's commit conflicted on (task_conflicted), for the planner. */
  files?: string[];
}

/**
 * The mission's repository, for missions submitted with a workspace: its
 * base commit and the mission branch's head (the last task_merged's head).
 */
export interface WorkspaceHeads {
  base: string;
  head: string;
}

/** A task waiting for the merge queue: the attempt that succeeded and its commit. */
export interface MergeWait {
  task_id: string;
  attempt: number;
  changes: Changes;
}

export interface TokenCount {
  input_tokens: number;
  output_tokens: number;
}

export interface UsageTotals extends TokenCount {
  byAgent: Record<string, TokenCount>;
  /** Keyed by model spec; "none" for run-only tasks. */
  byModel: Record<string, TokenCount>;
}

export interface MissionState {
  config: MissionConfig;
  status: MissionStatus;
  /** 0 for the first plan, n after the n-th replan. */
  revision: number;
  plan: NormalizedPlan | null;
  replansUsed: number;
  /** Set while replanning: draining in-flight attempts, or waiting for the planner. */
  replan: { phase: "draining" | "requested" } | null;
  /**
   * The current plan's tasks in plan order, then older ones. An array, not an
   * object keyed by id: a step that changes one record copies the array (a copy
   * of references), which stays cheap at any size where a large keyed object's
   * copy does not. Look a task up with `taskOf`.
   */
  tasks: TaskRecord[];
  /** Position of each task in `tasks`; replaced only when a plan is installed. */
  taskIndex: Record<string, number>;
  /** Waves of the current revision; wave n is at index n - 1 (a normalized plan numbers them so). */
  waves: WaveRecord[];
  /**
   * Counts kept up to date by every status change, so that a step need not
   * scan all tasks: tasks with an attempt in flight (dispatched or running),
   * and tasks of the current plan that have not succeeded (0: the mission is
   * complete).
   */
  inFlight: number;
  toSucceed: number;
  usage: UsageTotals;
  /** Final failures of the current revision. */
  failures: FailedTask[];
  /** Failures that led to each replan, oldest first (for the report). */
  replanHistory: Array<{ revision: number; failed: FailedTask[] }>;
  outcome: { status: FinalStatus; reason: string; at: number } | null;
  /** Null for a mission without a workspace (events from before git workspaces). */
  workspace: WorkspaceHeads | null;
  /** Tasks in the merging state, in the order their results arrived (the merge queue's order). */
  merging: MergeWait[];
}

// ---------------------------------------------------------------- inputs

/** What the shell feeds the machine. `now` is the input's time (ms since the epoch). */
export type MissionInput =
  /** The plan is validated and normalized by the machine (an invalid one fails the mission). */
  | {
      type: "planned";
      now: number;
      plan: PlanInput;
      revision?: number;
      error?: undefined;
      /** mission_planned.workspace (revision 0): where the mission branch starts. */
      workspace?: { base: string } | undefined;
    }
  /** The first plan could not be made (the planner gave up). */
  | { type: "planned"; now: number; error: string; plan?: undefined; revision?: number }
  | {
      type: "task_started";
      now: number;
      task_id: string;
      attempt: number;
      worker: string;
      /** JetStream delivery count; a new delivery of a started attempt restarts its clock. */
      delivery?: number;
    }
  | { type: "task_result"; now: number; task_id: string; attempt: number; result: TaskResult }
  /** The merge queue put the attempt's commit on the mission branch. */
  | {
      type: "task_merged";
      now: number;
      task_id: string;
      attempt: number;
      commit: string;
      merged: string;
      onto: string;
      head: string;
    }
  /** The merge queue could not integrate it: a failed attempt. */
  | {
      type: "task_conflicted";
      now: number;
      task_id: string;
      attempt: number;
      reason: "conflict" | "verify_failed";
      files: string[];
      error: string;
    }
  | { type: "tick"; now: number }
  | { type: "cancel"; now: number; reason: string; requested_by?: string }
  | { type: "replan_result"; now: number; plan: PlanInput; error?: undefined }
  | { type: "replan_result"; now: number; error: string; plan?: undefined };

export type MissionInputType = MissionInput["type"];

// ---------------------------------------------------------------- commands

/** Events the machine asks the shell to publish on `squad.coordination`. */
export type EmittedType = "wave_started" | "wave_completed" | "task_failed" | MissionEndType;

export type EmittedEvent = {
  [T in EmittedType]: { type: T; task_id: string | null; payload: PayloadInput<T> };
}[EmittedType];

/** One outcome per task, as the planner sees it on a replan. */
export interface TaskOutcome {
  id: string;
  agent: string;
  title: string;
  status: TaskStatus;
  summary: string | null;
  error: string | null;
  attempts: number;
}

export interface InFlightAttempt {
  task_id: string;
  agent: string;
  attempt: number;
  worker: string | null;
}

export type MissionCommand =
  /** Publish `task_assigned {task}` on `squad.tasks.<task.agent>` with `Nats-Msg-Id: msg_id`. */
  | { kind: "dispatch"; msg_id: string; task: Task }
  /**
   * Hand a succeeded attempt's commit to the merge queue, which answers with
   * task_merged or task_conflicted (fed back as inputs). `verify` runs again on
   * the merged tree, with the sandbox of `agent`.
   */
  | {
      kind: "integrate";
      task_id: string;
      agent: string;
      attempt: number;
      changes: Changes;
      verify: string[];
      timeout_s: number;
    }
  /**
   * Publish this event with envelope `id` (deterministic, so a re-publish is
   * deduplicated) and `timestamp` (the input's time, which keeps replay exact).
   */
  | { kind: "emit"; id: string; timestamp: string; event: EmittedEvent }
  /**
   * Ask the planner for a revised plan (planMission's `previous`), then feed
   * back `replan_result`. `revision` is the number the new mission_planned carries.
   */
  | {
      kind: "request_replan";
      revision: number;
      plan: NormalizedPlan;
      failed: FailedTask[];
      results: TaskOutcome[];
    }
  /** Stop these attempts if possible (cancel, budget, failure, or one attempt that timed out). */
  | { kind: "abort_tasks"; reason: string; tasks: InFlightAttempt[] }
  /** An input that changed nothing; log it visibly. */
  | {
      kind: "ignored";
      input: MissionInputType;
      task_id: string | null;
      attempt: number | null;
      reason: string;
    }
  /** The mission reached a final state: write the report (before publishing the final event). */
  | { kind: "finish"; status: FinalStatus; reason: string; summary: MissionSummary };

export interface StepResult {
  state: MissionState;
  commands: MissionCommand[];
}

// ---------------------------------------------------------------- construction

export interface CreateMissionOptions {
  missionId: string;
  startedAt: number;
  budget?: { tokens?: number; time_s?: number };
  startTimeoutS?: number;
  resultGraceS?: number;
  maxReplans?: number;
  reportPath?: string | null;
}

/** The state of a submitted mission that has no plan yet. */
export function createMission(opts: CreateMissionOptions): MissionState {
  return {
    config: {
      missionId: opts.missionId,
      startedAt: opts.startedAt,
      budget: { ...opts.budget },
      startTimeoutS: opts.startTimeoutS ?? DEFAULT_START_TIMEOUT_S,
      resultGraceS: opts.resultGraceS ?? DEFAULT_RESULT_GRACE_S,
      maxReplans: opts.maxReplans ?? DEFAULT_MAX_REPLANS,
      reportPath: opts.reportPath ?? null,
    },
    status: "planning",
    revision: 0,
    plan: null,
    replansUsed: 0,
    replan: null,
    tasks: [],
    taskIndex: {},
    waves: [],
    inFlight: 0,
    toSucceed: 0,
    usage: { input_tokens: 0, output_tokens: 0, byAgent: {}, byModel: {} },
    failures: [],
    replanHistory: [],
    outcome: null,
    workspace: null,
    merging: [],
  };
}

// ---------------------------------------------------------------- views

export function isFinal(state: MissionState): boolean {
  return state.status === "completed" || state.status === "failed" || state.status === "cancelled";
}

/** The record of a task by id (any revision's). */
export function taskOf(state: MissionState, id: string): TaskRecord | undefined {
  return Object.hasOwn(state.taskIndex, id) ? state.tasks[state.taskIndex[id]!] : undefined;
}

/** The mission branch's head, or null for a mission without a workspace. */
export function missionHead(state: MissionState): string | null {
  return state.workspace?.head ?? null;
}

export function isInFlight(task: TaskRecord): boolean {
  return task.status === "dispatched" || task.status === "running";
}

/** The attempt now in flight for a task, if any. */
export function currentAttempt(task: TaskRecord): AttemptRecord | null {
  const last = task.attempts.at(-1);
  return last && last.outcome === null && isInFlight(task) ? last : null;
}

export function inFlightAttempts(state: MissionState): InFlightAttempt[] {
  const out: InFlightAttempt[] = [];
  for (const t of state.tasks) {
    const a = currentAttempt(t);
    if (a) out.push({ task_id: t.id, agent: t.agent, attempt: a.attempt, worker: a.worker });
  }
  return out;
}

export interface TaskCounts {
  total: number;
  succeeded: number;
  failed: number;
  pending: number;
  in_flight: number;
  skipped: number;
  cancelled: number;
  superseded: number;
}

/**
 * Counts over the tasks that make up the mission now: the current plan's,
 * plus earlier successes a revision left out. Superseded tasks are counted
 * on their own and not in `total`.
 */
export function taskCounts(state: MissionState): TaskCounts {
  const c: TaskCounts = {
    total: 0,
    succeeded: 0,
    failed: 0,
    pending: 0,
    in_flight: 0,
    skipped: 0,
    cancelled: 0,
    superseded: 0,
  };
  for (const t of state.tasks) {
    if (t.status === "superseded") {
      c.superseded++;
      continue;
    }
    if (!t.inPlan && t.status !== "succeeded") continue;
    c.total++;
    if (t.status === "succeeded") c.succeeded++;
    else if (t.status === "failed") c.failed++;
    else if (t.status === "pending") c.pending++;
    else if (isInFlight(t) || t.status === "merging") c.in_flight++;
    else if (t.status === "skipped") c.skipped++;
    else if (t.status === "cancelled") c.cancelled++;
  }
  return c;
}

export interface TaskRow {
  id: string;
  agent: string;
  wave: number;
  revision: number;
  title: string;
  status: TaskStatus;
  attempts: number;
  summary: string | null;
  error: string | null;
  /** From the first dispatch to the final result. */
  duration_ms: number | null;
  usage: TokenCount;
  workers: string[];
  /** Its commit on the mission branch (git workspaces); null when it changed nothing or is not merged. */
  commit: string | null;
}

/** Everything the report needs, derived from a state. */
export interface MissionSummary {
  mission_id: string;
  status: MissionStatus;
  reason: string | null;
  revision: number;
  replans: number;
  tasks: TaskCounts;
  duration_ms: number | null;
  usage: UsageTotals;
  failed_tasks: FailedTask[];
  replan_history: Array<{ revision: number; failed: FailedTask[] }>;
  rows: TaskRow[];
  /** The mission branch's head (null without a git workspace). */
  head: string | null;
}

/** A summary of the mission; `now` gives the duration of a mission still running. */
export function summarize(state: MissionState, now?: number): MissionSummary {
  const end = state.outcome?.at ?? now;
  return {
    mission_id: state.config.missionId,
    status: state.status,
    reason: state.outcome?.reason ?? null,
    revision: state.revision,
    replans: state.replansUsed,
    tasks: taskCounts(state),
    duration_ms: end === undefined ? null : Math.max(0, end - state.config.startedAt),
    usage: structuredClone(state.usage),
    failed_tasks: state.failures.map((f) => ({ ...f })),
    replan_history: structuredClone(state.replanHistory),
    rows: state.tasks.map((t) => {
      const first = t.attempts[0];
      const usage = { input_tokens: 0, output_tokens: 0 };
      for (const a of t.attempts) {
        usage.input_tokens += a.usage?.input_tokens ?? 0;
        usage.output_tokens += a.usage?.output_tokens ?? 0;
      }
      return {
        id: t.id,
        agent: t.agent,
        wave: t.wave,
        revision: t.revision,
        title: t.spec.title,
        status: t.status,
        attempts: t.attempts.length,
        summary: t.summary,
        error: t.error,
        duration_ms: first && t.finishedAt !== null ? t.finishedAt - first.dispatchedAt : null,
        usage,
        workers: [...new Set(t.attempts.flatMap((a) => (a.worker ? [a.worker] : [])))],
        commit: t.commit,
      };
    }),
    head: state.workspace?.head ?? null,
  };
}
