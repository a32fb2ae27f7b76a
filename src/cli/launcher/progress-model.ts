/**
 * The live progress view's model (pure): events, supervisor notices and the
 * final summary in, a state out; and the state as table rows of plain text
 * with a tone each. No I/O and no clock: the caller passes `now`. The
 * rendering (colours, cursor movement, widths) is progress-view.ts.
 *
 * Events may arrive out of order: `task_assigned` comes from a core
 * subscription on `squad.tasks.*`, the rest from the ordered SQUAD_EVENTS
 * feed. A row never goes back to an older attempt or an earlier status.
 */
import type { EventOf, SquadEvent } from "../../schema/index.ts";
import { ms } from "../event-line.ts";
import type { SupervisorEvent } from "../supervisor.ts";
import type { DeploySummary } from "./deploy-summary.ts";
import { oneLine as cut } from "../../text.ts";

export type ProgressTaskStatus =
  | "pending"
  | "waiting"
  | "assigned"
  | "running"
  /** Its replica died mid-task: JetStream redelivers it after the ack wait. */
  | "stalled"
  | "retrying"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "skipped"
  | "superseded";

export type Tone = "ok" | "bad" | "active" | "assigned" | "waiting" | "warn" | "muted" | "plain";

export interface ProgressTaskRow {
  id: string;
  wave: number;
  agent: string;
  title: string;
  status: ProgressTaskStatus;
  /** 0 until the first task_assigned / task_started. */
  attempt: number;
  maxAttempts: number | null;
  /** `<agent>/<instance>` of the replica running or that ran it. */
  worker: string | null;
  startedAt: number | null;
  durationMs: number | null;
  tokens: number;
  steps: number;
  lastStep: string | null;
  error: string | null;
  /** What the task changed (git workspaces): `<commit> 2 files +3 -1`, then `merged …`. */
  change: string | null;
}

export interface WaveRow {
  wave: number;
  status: "pending" | "running" | "completed";
}

export type ReplicaState = "up" | "down" | "restarting" | "gave_up" | "stopped";

export interface ReplicaRow {
  name: string;
  pid: number | null;
  state: ReplicaState;
  restarts: number;
  /** The worker instance it runs (from its agent_online), if seen. */
  instance: string | null;
}

export interface Notice {
  at: number;
  text: string;
  tone: Tone;
}

export type MissionPhase =
  "starting" | "submitted" | "planned" | "running" | "completed" | "failed" | "cancelled";

export interface ProgressState {
  missionId: string;
  title: string | null;
  phase: MissionPhase;
  startedAt: number;
  endedAt: number | null;
  reason: string | null;
  cancelRequested: boolean;
  /** Children are being stopped: exits are expected, not notices. */
  stopping: boolean;
  waves: WaveRow[];
  taskOrder: string[];
  tasks: Record<string, ProgressTaskRow>;
  replicaOrder: string[];
  replicas: Record<string, ReplicaRow>;
  /** `<agent>/<instance>` → replica name (matched by the pid in agent_online). */
  workers: Record<string, string>;
  /** Header facts, e.g. `nats` → `nats://127.0.0.1:4222 (started here)`. */
  info: Array<[string, string]>;
  notices: Notice[];
  summary: DeploySummary | null;
}

export type ProgressInput =
  | { kind: "event"; event: SquadEvent }
  | { kind: "supervisor"; event: SupervisorEvent; at: number }
  | { kind: "notice"; text: string; tone?: Tone; at: number }
  | { kind: "info"; key: string; value: string }
  | { kind: "stopping" }
  | { kind: "summary"; summary: DeploySummary; at: number };

/** Notices kept (the latest); older ones scroll away. */
export const MAX_NOTICES = 6;

export function initialProgress(missionId: string, startedAt: number): ProgressState {
  return {
    missionId,
    title: null,
    phase: "starting",
    startedAt,
    endedAt: null,
    reason: null,
    cancelRequested: false,
    stopping: false,
    waves: [],
    taskOrder: [],
    tasks: {},
    replicaOrder: [],
    replicas: {},
    workers: {},
    info: [],
    notices: [],
    summary: null,
  };
}

/** state + input → state (the input state is not changed). */
export function applyProgress(state: ProgressState, input: ProgressInput): ProgressState {
  switch (input.kind) {
    case "event":
      return applyEvent(state, input.event);
    case "supervisor":
      return applySupervisor(state, input.event, input.at);
    case "notice":
      return notice(state, input.at, input.text, input.tone ?? "plain");
    case "info": {
      const info = state.info.filter(([k]) => k !== input.key);
      return { ...state, info: [...info, [input.key, input.value]] };
    }
    case "stopping":
      return { ...state, stopping: true };
    case "summary": {
      const s = input.summary;
      const phase: MissionPhase = s.status;
      return {
        ...finalizeTasks({ ...state, phase, reason: s.reason }),
        summary: s,
        endedAt: state.endedAt ?? input.at,
      };
    }
  }
}

const FINAL_TASK: ReadonlySet<ProgressTaskStatus> = new Set([
  "succeeded",
  "failed",
  "cancelled",
  "skipped",
  "superseded",
]);

/** Rank of a status within one attempt: a row never moves to a lower one. */
const RANK: Record<ProgressTaskStatus, number> = {
  pending: 0,
  waiting: 1,
  assigned: 2,
  running: 3,
  stalled: 3,
  retrying: 4,
  succeeded: 5,
  failed: 5,
  cancelled: 5,
  skipped: 5,
  superseded: 5,
};

function applyEvent(state: ProgressState, e: SquadEvent): ProgressState {
  if (e.type === "agent_online") return workerOnline(state, e);
  if (e.mission_id !== state.missionId) return state;
  const at = Date.parse(e.timestamp);
  switch (e.type) {
    case "mission_submitted":
      return state.phase === "starting" ? { ...state, phase: "submitted" } : state;
    case "mission_planned":
      return planned(state, e);
    case "wave_started": {
      let s = setWave(state, e.payload.wave, "running");
      for (const id of e.payload.task_ids) {
        const row = s.tasks[id];
        if (row && row.status === "pending") s = setTask(s, id, { status: "waiting" });
      }
      return isFinalPhase(s.phase) ? s : { ...s, phase: "running" };
    }
    case "wave_completed":
      return setWave(state, e.payload.wave, "completed");
    case "task_assigned": {
      const t = e.payload.task;
      let s = state;
      if (!s.tasks[t.id])
        s = addTask(s, { id: t.id, wave: t.wave, agent: t.agent, title: t.title });
      const row = s.tasks[t.id]!;
      if (t.attempt < row.attempt) return s;
      if (t.attempt === row.attempt && RANK[row.status] >= RANK.assigned) return s;
      return setTask(s, t.id, {
        status: "assigned",
        attempt: t.attempt,
        maxAttempts: t.max_attempts,
        worker: null,
        startedAt: null,
        durationMs: null,
        steps: 0,
        lastStep: null,
        error: null,
      });
    }
    case "task_started": {
      const row = e.task_id ? state.tasks[e.task_id] : undefined;
      if (!row || e.payload.attempt < row.attempt) return state;
      const redelivered = row.status === "stalled";
      if (e.payload.attempt === row.attempt && RANK[row.status] >= RANK.running && !redelivered) {
        return state;
      }
      return setTask(state, row.id, {
        status: "running",
        attempt: e.payload.attempt,
        worker: e.payload.worker,
        startedAt: at,
        durationMs: null,
        // The attempt's own, counted live from its model calls until its result says.
        tokens: 0,
        steps: 0,
        lastStep: null,
        error: null,
      });
    }
    case "task_model_called": {
      const row = e.task_id ? state.tasks[e.task_id] : undefined;
      if (!row || e.payload.attempt !== row.attempt || FINAL_TASK.has(row.status)) return state;
      const p = e.payload;
      const asked = p.tool_calls.length ? p.tool_calls.join(", ") : "text";
      return setTask(state, row.id, {
        tokens: row.tokens + p.input_tokens + p.output_tokens,
        lastStep: `model call ${p.call} → ${oneLine(asked)}`,
        worker: row.worker ?? p.worker,
      });
    }
    case "task_progress": {
      const row = e.task_id ? state.tasks[e.task_id] : undefined;
      if (!row || e.payload.attempt !== row.attempt || FINAL_TASK.has(row.status)) return state;
      const st = e.payload.step;
      const arg = typeof st.args.command === "string" ? st.args.command : JSON.stringify(st.args);
      return setTask(state, row.id, {
        steps: row.steps + 1,
        lastStep: `${st.tool} ${oneLine(arg)} → ${st.ok ? "ok" : "error"}`,
        worker: row.worker ?? e.payload.worker,
      });
    }
    case "task_completed":
    case "task_failed":
      return taskResult(state, e, at);
    case "task_merged": {
      const row = e.task_id ? state.tasks[e.task_id] : undefined;
      if (!row) return state;
      const how = e.payload.fast_forward ? "fast-forward" : "rebased";
      const files = row.change?.replace(/^\S+ /, "") ?? "";
      return setTask(state, row.id, {
        change: `merged ${e.payload.merged.slice(0, 10)} (${how})${files ? ` ${files}` : ""}`,
      });
    }
    case "task_conflicted": {
      const row = e.task_id ? state.tasks[e.task_id] : undefined;
      if (!row || e.payload.attempt < row.attempt) return state;
      const files = e.payload.files.length ? ` in ${e.payload.files.join(", ")}` : "";
      const what =
        e.payload.reason === "conflict" ? `conflict${files}` : "verify failed on the merged tree";
      return notice(
        setTask(state, row.id, { status: "retrying", error: `not merged: ${what}`, change: null }),
        at,
        `task ${row.id} attempt ${e.payload.attempt} not merged: ${what}`,
        "warn",
      );
    }
    case "mission_completed":
    case "mission_failed":
    case "mission_cancelled": {
      if (e.type === "mission_cancelled" && e.source !== "orchestrator") {
        const by = e.payload.requested_by ?? e.source;
        return notice(
          { ...state, cancelRequested: true },
          at,
          `cancel requested by ${by}: ${e.payload.reason}`,
          "warn",
        );
      }
      const phase: MissionPhase =
        e.type === "mission_completed"
          ? "completed"
          : e.type === "mission_failed"
            ? "failed"
            : "cancelled";
      const reason = e.type === "mission_completed" ? null : e.payload.reason;
      return finalizeTasks({ ...state, phase, reason, endedAt: at });
    }
    default:
      return state;
  }
}

function planned(state: ProgressState, e: EventOf<"mission_planned">): ProgressState {
  let s: ProgressState = {
    ...state,
    title: e.payload.title,
    phase: state.phase === "starting" || state.phase === "submitted" ? "planned" : state.phase,
  };
  const inPlan = new Set<string>();
  for (const w of e.payload.plan.waves) {
    if (!s.waves.some((x) => x.wave === w.wave)) {
      s = { ...s, waves: [...s.waves, { wave: w.wave, status: "pending" }] };
    }
    for (const t of w.tasks) {
      inPlan.add(t.id);
      if (!s.tasks[t.id]) {
        s = addTask(s, { id: t.id, wave: w.wave, agent: t.agent, title: t.title });
        if (t.max_attempts !== undefined) s = setTask(s, t.id, { maxAttempts: t.max_attempts });
      }
    }
  }
  // A revised plan: what it dropped (and had not succeeded) is superseded.
  for (const id of s.taskOrder) {
    const row = s.tasks[id]!;
    if (!inPlan.has(id) && row.status !== "succeeded") {
      s = setTask(s, id, { status: "superseded" });
    }
  }
  return { ...s, waves: [...s.waves].sort((a, b) => a.wave - b.wave) };
}

function taskResult(
  state: ProgressState,
  e: EventOf<"task_completed"> | EventOf<"task_failed">,
  at: number,
): ProgressState {
  const r = e.payload.result;
  const row = e.task_id ? state.tasks[e.task_id] : undefined;
  if (!row || r.attempt < row.attempt) return state;
  if (r.attempt === row.attempt && FINAL_TASK.has(row.status)) return state;
  const common = {
    attempt: r.attempt,
    worker: r.worker,
    durationMs: r.duration_ms,
    tokens: r.usage.input_tokens + r.usage.output_tokens,
  };
  if (e.type === "task_completed") {
    const c = r.changes;
    const change = c
      ? `${c.commit.slice(0, 10)} ${c.files.length} file${c.files.length === 1 ? "" : "s"} +${c.additions} -${c.deletions}`
      : null;
    return setTask(state, row.id, { ...common, status: "succeeded", error: null, change });
  }
  const max = row.maxAttempts;
  const final = r.retryable === false || (max !== null && r.attempt >= max);
  const error = oneLine(r.error ?? r.summary, 200);
  const s = setTask(state, row.id, { ...common, status: final ? "failed" : "retrying", error });
  const of = max !== null ? `/${max}` : "";
  return notice(s, at, `task ${row.id} attempt ${r.attempt}${of} failed: ${error}`, "warn");
}

function workerOnline(state: ProgressState, e: EventOf<"agent_online">): ProgressState {
  const name = state.replicaOrder.find((n) => state.replicas[n]!.pid === e.payload.pid);
  if (!name) return state;
  const worker = `${e.payload.agent}/${e.payload.instance}`;
  return {
    ...state,
    replicas: { ...state.replicas, [name]: { ...state.replicas[name]!, instance: worker } },
    workers: { ...state.workers, [worker]: name },
  };
}

function applySupervisor(state: ProgressState, e: SupervisorEvent, at: number): ProgressState {
  const old: ReplicaRow = state.replicas[e.name] ?? {
    name: e.name,
    pid: null,
    state: "down",
    restarts: 0,
    instance: null,
  };
  const order = state.replicas[e.name] ? state.replicaOrder : [...state.replicaOrder, e.name];
  const put = (row: ReplicaRow, s: ProgressState = state): ProgressState => ({
    ...s,
    replicaOrder: order,
    replicas: { ...s.replicas, [e.name]: row },
  });
  const text = describeSupervisorEvent(e);
  switch (e.type) {
    case "started": {
      const s = put({ ...old, pid: e.pid, state: "up", restarts: e.restarts, instance: null });
      return e.restarts > 0 ? notice(s, at, text, "warn") : s;
    }
    case "exited": {
      if (state.stopping) return put({ ...old, pid: null, state: "stopped" });
      let s = notice(put({ ...old, pid: null, state: "down" }), at, text, "bad");
      // What it was running stalls until JetStream hands it to another replica.
      for (const id of s.taskOrder) {
        const row = s.tasks[id]!;
        if (row.status === "running" && row.worker && s.workers[row.worker] === e.name) {
          s = setTask(s, id, { status: "stalled" });
        }
      }
      return s;
    }
    case "restarting":
      return notice(put({ ...old, state: "restarting", restarts: e.restarts }), at, text, "warn");
    case "gave_up":
      return notice(put({ ...old, state: "gave_up" }), at, text, "bad");
  }
}

/** One human sentence per supervisor event (the notices, and `swarm up`'s lines). */
export function describeSupervisorEvent(e: SupervisorEvent): string {
  switch (e.type) {
    case "started":
      return e.restarts > 0
        ? `${e.name} restarted (pid ${e.pid}, restart ${e.restarts})`
        : `${e.name} started (pid ${e.pid})`;
    case "exited": {
      const how = e.signal ? `signal ${e.signal}` : `exit code ${e.code ?? "?"}`;
      return `${e.name} (pid ${e.pid}) exited: ${how}`;
    }
    case "restarting":
      return `${e.name} restarting in ${ms(e.delayMs)} (restart ${e.restarts})`;
    case "gave_up":
      return `${e.name} keeps crashing (${e.restarts} restarts, last ${e.signal ? `signal ${e.signal}` : `exit code ${e.code ?? "?"}`}): not restarted again`;
  }
}

// ------------------------------------------------------------------ table rows

export interface TaskCells {
  mark: string;
  id: string;
  agent: string;
  /** The supervised replica (`builder-2`) or the worker instance. */
  replica: string;
  status: string;
  attempt: string;
  duration: string;
  tokens: string;
  /** Last step or error. */
  detail: string;
  tone: Tone;
}

export interface WaveBlock {
  wave: number;
  status: WaveRow["status"];
  /** `wave 2  running  1/3 done` */
  label: string;
  tone: Tone;
  tasks: TaskCells[];
}

export interface ProgressTable {
  /** `mission m-… "title"` */
  title: string;
  status: { text: string; tone: Tone };
  elapsed: string;
  tokens: string;
  info: Array<[string, string]>;
  waves: WaveBlock[];
  replicas: Array<{ name: string; text: string; tone: Tone }>;
  notices: Array<{ time: string; text: string; tone: Tone }>;
  /** Present once the mission ended. */
  summary: Array<{ text: string; tone: Tone }> | null;
}

const TASK_TONE: Record<ProgressTaskStatus, Tone> = {
  pending: "muted",
  waiting: "waiting",
  assigned: "assigned",
  running: "active",
  stalled: "warn",
  retrying: "warn",
  succeeded: "ok",
  failed: "bad",
  cancelled: "warn",
  skipped: "muted",
  superseded: "muted",
};

const TASK_MARK: Record<ProgressTaskStatus, string> = {
  pending: "·",
  waiting: "·",
  assigned: "○",
  running: "◐",
  stalled: "◌",
  retrying: "↻",
  succeeded: "✔",
  failed: "✘",
  cancelled: "⊘",
  skipped: "-",
  superseded: "-",
};

const PHASE_TONE: Record<MissionPhase, Tone> = {
  starting: "muted",
  submitted: "waiting",
  planned: "waiting",
  running: "active",
  completed: "ok",
  failed: "bad",
  cancelled: "warn",
};

/** The state as rows of text (pure; `now` only ages what still runs). */
export function progressTable(state: ProgressState, now: number): ProgressTable {
  const rows = state.taskOrder.map((id) => state.tasks[id]!);
  const waves: WaveBlock[] = state.waves.map((w) => {
    const tasks = rows.filter((r) => r.wave === w.wave);
    const done = tasks.filter((t) => t.status === "succeeded").length;
    const failed = tasks.filter((t) => t.status === "failed").length;
    const tone: Tone =
      failed > 0
        ? "bad"
        : w.status === "completed"
          ? "ok"
          : w.status === "running"
            ? "active"
            : "muted";
    return {
      wave: w.wave,
      status: w.status,
      label: `wave ${w.wave}  ${w.status}  ${done}/${tasks.length} done${failed ? `, ${failed} failed` : ""}`,
      tone,
      tasks: tasks.map((t) => taskCells(state, t, now)),
    };
  });
  const end = state.endedAt ?? now;
  const tokens = rows.reduce((n, r) => n + r.tokens, 0);
  const cancel = state.cancelRequested && !isFinalPhase(state.phase) ? " (cancelling)" : "";
  return {
    title: `mission ${state.missionId}${state.title ? ` "${state.title}"` : ""}`,
    status: { text: `${state.phase}${cancel}`, tone: PHASE_TONE[state.phase] },
    elapsed: ms(Math.max(0, end - state.startedAt)),
    tokens: `${state.summary ? state.summary.usage.input_tokens + state.summary.usage.output_tokens : tokens} tokens`,
    info: state.info,
    waves,
    replicas: replicaCells(state),
    notices: state.notices.map((n) => ({
      time: new Date(n.at).toISOString().slice(11, 19),
      text: n.text,
      tone: n.tone,
    })),
    summary: state.summary ? summaryLines(state, state.summary) : null,
  };
}

function taskCells(state: ProgressState, t: ProgressTaskRow, now: number): TaskCells {
  const duration =
    t.durationMs !== null
      ? ms(t.durationMs)
      : (t.status === "running" || t.status === "stalled") && t.startedAt !== null
        ? ms(Math.max(0, now - t.startedAt))
        : "";
  const replica = t.worker ? (state.workers[t.worker] ?? shortWorker(t.worker)) : "";
  const attempt = t.attempt > 0 ? `${t.attempt}/${t.maxAttempts ?? "?"}` : "";
  const detail =
    t.error && (t.status === "failed" || t.status === "retrying")
      ? t.error
      : t.status === "stalled"
        ? `${replica} died; redelivered to another replica after the ack wait`
        : t.status === "succeeded" && t.change
          ? t.change
          : t.status === "running" || t.status === "succeeded"
            ? (t.lastStep ?? t.title)
            : t.title;
  return {
    mark: TASK_MARK[t.status],
    id: t.id,
    agent: t.agent,
    replica,
    status: t.status,
    attempt,
    duration,
    tokens: t.durationMs !== null || t.tokens > 0 ? `${t.tokens} tok` : "",
    detail,
    tone: TASK_TONE[t.status],
  };
}

function replicaCells(state: ProgressState): Array<{ name: string; text: string; tone: Tone }> {
  const all = state.replicaOrder.map((n) => state.replicas[n]!);
  // Once everything is down after a stop, one cell says so (the restarts are in the summary).
  if (state.stopping && all.length > 0 && all.every((r) => r.state === "stopped")) {
    return [{ name: "*", text: `all ${all.length} processes stopped`, tone: "muted" }];
  }
  return all.map(replicaCell);
}

function replicaCell(r: ReplicaRow): { name: string; text: string; tone: Tone } {
  const restarts = r.restarts > 0 ? ` ↻${r.restarts}` : "";
  switch (r.state) {
    case "up":
      return { name: r.name, text: `${r.name} ●${restarts}`, tone: r.restarts ? "warn" : "ok" };
    case "restarting":
      return { name: r.name, text: `${r.name} restarting${restarts}`, tone: "warn" };
    case "down":
      return { name: r.name, text: `${r.name} down${restarts}`, tone: "bad" };
    case "gave_up":
      return { name: r.name, text: `${r.name} gave up${restarts}`, tone: "bad" };
    case "stopped":
      return { name: r.name, text: `${r.name} stopped${restarts}`, tone: "muted" };
  }
}

function summaryLines(state: ProgressState, s: DeploySummary): Array<{ text: string; tone: Tone }> {
  const tone: Tone = s.status === "completed" ? "ok" : s.status === "failed" ? "bad" : "warn";
  const mark = s.status === "completed" ? "✔" : s.status === "failed" ? "✘" : "⊘";
  const lines: Array<{ text: string; tone: Tone }> = [
    {
      text:
        `${mark} mission ${s.mission_id} ${s.status}: ${s.tasks.succeeded}/${s.tasks.total} tasks succeeded, ` +
        `${s.tasks.failed} failed in ${ms(s.duration_ms)}; ` +
        `tokens ${s.usage.input_tokens} in, ${s.usage.output_tokens} out`,
      tone,
    },
  ];
  if (s.reason) lines.push({ text: `  reason: ${s.reason}`, tone });
  const restarted = state.replicaOrder
    .map((n) => state.replicas[n]!)
    .filter((r) => r.restarts > 0)
    .map((r) => `${r.name} ×${r.restarts}`);
  if (restarted.length) lines.push({ text: `  restarts: ${restarted.join(", ")}`, tone: "warn" });
  lines.push({ text: `  report: ${s.report ?? "(none written)"}`, tone: "plain" });
  return lines;
}

// ------------------------------------------------------------------ helpers

export function isFinalPhase(p: MissionPhase): boolean {
  return p === "completed" || p === "failed" || p === "cancelled";
}

/** The mission ended: what still waits is skipped, what still runs is cancelled. */
function finalizeTasks(state: ProgressState): ProgressState {
  let s = state;
  for (const id of s.taskOrder) {
    const row = s.tasks[id]!;
    if (row.status === "pending" || row.status === "waiting") {
      s = setTask(s, id, { status: "skipped" });
    } else if (row.status === "assigned" || row.status === "running" || row.status === "stalled") {
      s = setTask(s, id, { status: "cancelled" });
    } else if (row.status === "retrying") {
      s = setTask(s, id, { status: "failed" });
    }
  }
  return s;
}

function addTask(
  state: ProgressState,
  t: { id: string; wave: number; agent: string; title: string },
): ProgressState {
  const row: ProgressTaskRow = {
    ...t,
    status: "pending",
    attempt: 0,
    maxAttempts: null,
    worker: null,
    startedAt: null,
    durationMs: null,
    tokens: 0,
    steps: 0,
    lastStep: null,
    error: null,
    change: null,
  };
  let waves = state.waves;
  if (!waves.some((w) => w.wave === t.wave)) {
    waves = [...waves, { wave: t.wave, status: "pending" as const }].sort(
      (a, b) => a.wave - b.wave,
    );
  }
  return {
    ...state,
    waves,
    taskOrder: [...state.taskOrder, t.id],
    tasks: { ...state.tasks, [t.id]: row },
  };
}

function setTask(
  state: ProgressState,
  id: string,
  changes: Partial<ProgressTaskRow>,
): ProgressState {
  const row = state.tasks[id];
  if (!row) return state;
  return { ...state, tasks: { ...state.tasks, [id]: { ...row, ...changes } } };
}

function setWave(state: ProgressState, wave: number, status: WaveRow["status"]): ProgressState {
  const exists = state.waves.some((w) => w.wave === wave);
  const waves = exists
    ? state.waves.map((w) => (w.wave === wave ? { ...w, status } : w))
    : [...state.waves, { wave, status }].sort((a, b) => a.wave - b.wave);
  return { ...state, waves };
}

function notice(state: ProgressState, at: number, text: string, tone: Tone): ProgressState {
  return { ...state, notices: [...state.notices, { at, text, tone }].slice(-MAX_NOTICES) };
}

/** `builder/3fa2c1d0` → `builder/3fa2c1` */
function shortWorker(worker: string): string {
  const [agent, instance = ""] = worker.split("/");
  return `${agent}/${instance.slice(0, 6)}`;
}

function oneLine(s: string, max = 80): string {
  return cut(s, max);
}
