/**
 * What the dashboard shows, folded from the events of the bus (pure: events
 * in, view models out; no clock but the `now` a caller passes). Missions,
 * their plans and tasks with every attempt, agents' replicas, pending
 * approvals and the dead letters seen. An event id is folded once, so the
 * replayed history and the live feed can overlap.
 */
import {
  isFinishedStanding,
  type Changes,
  type DlqRecord,
  type EventOf,
  type MissionSummaryValue,
  type SquadEvent,
  type Step,
  type TaskResult,
  type VerificationCheck,
} from "../schema/index.ts";
import { criticalPath } from "./critical-path.ts";

export type TaskState =
  | "pending"
  | "assigned"
  | "running"
  | "succeeded"
  | "merged"
  | "conflicted"
  | "failed"
  | "cancelled";

export type MissionStatus =
  "submitted" | "planned" | "running" | "completed" | "failed" | "cancelled";

export interface AttemptView {
  attempt: number;
  worker: string | null;
  delivery: number | null;
  assigned_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  status: "assigned" | "running" | "succeeded" | "failed";
  /** Tool calls and `run` steps, live from task_progress, then the result's. */
  steps: Step[];
  /** Model calls of a model-driven attempt, in the order they ended (task_model_called). */
  model_calls: ModelCallView[];
  /** Model calls and steps in the order they happened (indexes into `model_calls` and `steps`). */
  timeline: TimelineEntry[];
  verification: VerificationCheck[];
  summary: string | null;
  error: string | null;
  usage: TaskResult["usage"] | null;
  duration_ms: number | null;
  changes: Changes | null;
  merged: EventOf<"task_merged">["payload"] | null;
  conflicted: EventOf<"task_conflicted">["payload"] | null;
}

/** One model call (task_model_called) as the task page shows it. */
export interface ModelCallView {
  call: number;
  model: string;
  input_tokens: number;
  output_tokens: number;
  duration_ms: number;
  tool_calls: string[];
  /** The reply's text, cut by the worker; for the page to show as text, never as markup. */
  text: string;
  finish_reason: string | null;
  /** Steps of the attempt before it (the worker counted). */
  steps_before: number;
  /** When it ended (its event's timestamp). */
  ended_at: string;
}

export type TimelineEntry = { kind: "model"; index: number } | { kind: "step"; index: number };

export interface TaskView {
  id: string;
  agent: string;
  wave: number;
  title: string;
  depends_on: string[];
  run: string[];
  verify: string[];
  state: TaskState;
  attempts: AttemptView[];
  /** On the plan's longest chain of dependencies (weighted by duration where known). */
  critical: boolean;
}

export interface TokenCount {
  input_tokens: number;
  output_tokens: number;
}

export interface MissionSummary {
  id: string;
  title: string;
  status: MissionStatus;
  /** The `source` of mission_submitted (`cli`, or the signer's role). */
  submitted_by: string | null;
  submitted_at: string | null;
  ended_at: string | null;
  /** To the end, or to `now` while it runs. */
  duration_ms: number | null;
  progress: { total: number; succeeded: number; failed: number; running: number };
  /** By model spec (`run-only` for tasks without a model). */
  tokens: Record<string, TokenCount>;
  reason: string | null;
}

export interface MissionDetail extends MissionSummary {
  strategy: string;
  planner: string | null;
  revision: number;
  budget: { tokens: number | null; time_s: number | null };
  used: { tokens: number; time_s: number | null };
  waves: Array<{ wave: number; task_ids: string[] }>;
  tasks: TaskView[];
  edges: Array<{ from: string; to: string }>;
  critical_path: string[];
}

export interface ReplicaView {
  agent: string;
  instance: string;
  online: boolean;
  host: string | null;
  pid: number | null;
  model: string | null;
  concurrency: number | null;
  in_flight: number;
  completed: number;
  failed: number;
  last_seen: string;
  reason: string | null;
}

export interface ApprovalView {
  approval_id: string;
  mission_id: string | null;
  task_id: string | null;
  agent: string;
  worker: string;
  command: string;
  reason: string;
  requested_at: string;
  timeout_s: number;
}

interface MissionRecord {
  id: string;
  title: string;
  status: MissionStatus;
  submittedBy: string | null;
  submittedAt: string | null;
  plannedAt: string | null;
  endedAt: string | null;
  reason: string | null;
  /** A cancel was asked for (the request, or the end): a task that fails after it was stopped. */
  cancelRequested: boolean;
  strategy: string;
  planner: string | null;
  revision: number;
  budget: { tokens: number | null; time_s: number | null };
  waves: Array<{ wave: number; task_ids: string[] }>;
  tasks: Map<string, TaskView>;
  /** A finished mission known from the mission view only: its events are read when it is opened. */
  stub: MissionSummaryValue | null;
  /** Its events were asked for (historyOf). */
  historyAsked: boolean;
}

export interface SwarmView {
  /** Fold one event; false when its id was folded already. */
  apply(event: SquadEvent): boolean;
  applyDeadLetter(record: DlqRecord, subject: string): void;
  /**
   * A finished mission's summary from the mission view (KV): listed at once,
   * its events read only if someone opens it. Ignored for a mission whose
   * events were folded.
   */
  applySummary(summary: MissionSummaryValue): void;
  /**
   * The stream range of a listed-only mission's events, the first time it is
   * asked for (the caller replays them into apply, then calls historyLoaded); else null.
   */
  historyOf(missionId: string): { fromSeq: number; toSeq: number } | null;
  /** The mission's events are folded: its view summary is dropped. */
  historyLoaded(missionId: string): void;
  missions(now: Date): MissionSummary[];
  mission(id: string, now: Date): MissionDetail | null;
  task(missionId: string, taskId: string): TaskView | null;
  replicas(): ReplicaView[];
  approvals(): ApprovalView[];
  deadLetters(): Array<DlqRecord & { subject: string }>;
}

export interface SwarmViewOptions {
  /** Dead-letter records kept (newest). Default 200. */
  maxDeadLetters?: number;
  /** Event ids remembered to fold each once. Default 200,000. */
  dedupeWindow?: number;
}

const FINAL: ReadonlySet<TaskState> = new Set(["succeeded", "merged", "failed", "cancelled"]);

export function createSwarmView(opts: SwarmViewOptions = {}): SwarmView {
  const missions = new Map<string, MissionRecord>();
  const replicas = new Map<string, ReplicaView>();
  const pending = new Map<string, ApprovalView>();
  const resolved = new Set<string>();
  const dead: Array<DlqRecord & { subject: string }> = [];
  const seen = new Set<string>();
  const maxDead = opts.maxDeadLetters ?? 200;
  const window = opts.dedupeWindow ?? 200_000;

  const missionOf = (id: string): MissionRecord => {
    let m = missions.get(id);
    if (!m) {
      m = {
        id,
        title: id,
        status: "submitted",
        submittedBy: null,
        submittedAt: null,
        plannedAt: null,
        endedAt: null,
        reason: null,
        cancelRequested: false,
        strategy: "",
        planner: null,
        revision: 0,
        budget: { tokens: null, time_s: null },
        waves: [],
        tasks: new Map(),
        stub: null,
        historyAsked: false,
      };
      missions.set(id, m);
    }
    return m;
  };

  const taskOf = (m: MissionRecord, id: string, agent = "?"): TaskView => {
    let t = m.tasks.get(id);
    if (!t) {
      t = {
        id,
        agent,
        wave: 1,
        title: id,
        depends_on: [],
        run: [],
        verify: [],
        state: "pending",
        attempts: [],
        critical: false,
      };
      m.tasks.set(id, t);
    }
    return t;
  };

  const attemptOf = (t: TaskView, n: number): AttemptView => {
    let a = t.attempts.find((x) => x.attempt === n);
    if (!a) {
      a = {
        attempt: n,
        worker: null,
        delivery: null,
        assigned_at: null,
        started_at: null,
        ended_at: null,
        status: "assigned",
        steps: [],
        model_calls: [],
        timeline: [],
        verification: [],
        summary: null,
        error: null,
        usage: null,
        duration_ms: null,
        changes: null,
        merged: null,
        conflicted: null,
      };
      t.attempts.push(a);
      t.attempts.sort((x, y) => x.attempt - y.attempt);
    }
    return a;
  };

  const replicaKey = (agent: string, instance: string) => `${agent}/${instance}`;

  function applyTaskEvent(e: SquadEvent, m: MissionRecord): void {
    if (!e.task_id) return;
    switch (e.type) {
      case "task_assigned": {
        const task = e.payload.task;
        const t = taskOf(m, task.id, task.agent);
        t.agent = task.agent;
        t.title = task.title;
        t.wave = task.wave;
        t.depends_on = task.depends_on;
        const a = attemptOf(t, task.attempt);
        a.assigned_at ??= e.timestamp;
        if (!FINAL.has(t.state) || t.state === "failed") t.state = "assigned";
        return;
      }
      case "task_started": {
        const t = taskOf(m, e.task_id);
        const a = attemptOf(t, e.payload.attempt);
        const delivery = e.payload.delivery ?? null;
        // A later delivery of a running attempt starts over: what the earlier one did is not its.
        if (
          a.ended_at === null &&
          delivery !== null &&
          a.delivery !== null &&
          delivery > a.delivery
        ) {
          a.steps = [];
          a.model_calls = [];
          a.timeline = [];
        }
        a.worker = e.payload.worker;
        a.delivery = delivery;
        // No plan or assignment seen (a dashboard that joined late): the worker names the agent.
        if (t.agent === "?") t.agent = e.payload.worker.split("/")[0] || "?";
        a.started_at ??= e.timestamp;
        if (a.status === "assigned") a.status = "running";
        if (!FINAL.has(t.state) || t.state === "failed") t.state = "running";
        return;
      }
      case "task_progress": {
        const t = taskOf(m, e.task_id);
        const a = attemptOf(t, e.payload.attempt);
        a.worker ??= e.payload.worker;
        if (a.ended_at === null) {
          a.steps.push(e.payload.step);
          a.timeline = attemptTimeline(a.steps, a.model_calls);
        }
        return;
      }
      case "task_model_called": {
        const t = taskOf(m, e.task_id);
        const p = e.payload;
        const a = attemptOf(t, p.attempt);
        a.worker ??= p.worker;
        a.model_calls.push({
          call: p.call,
          model: p.model,
          input_tokens: p.input_tokens,
          output_tokens: p.output_tokens,
          duration_ms: p.duration_ms,
          tool_calls: p.tool_calls,
          text: p.text,
          finish_reason: p.finish_reason ?? null,
          steps_before: p.steps_before,
          ended_at: e.timestamp,
        });
        a.timeline = attemptTimeline(a.steps, a.model_calls);
        return;
      }
      case "task_completed":
      case "task_failed": {
        const r = e.payload.result;
        const t = taskOf(m, e.task_id);
        const a = attemptOf(t, r.attempt);
        a.worker = r.worker;
        a.status = r.status;
        a.ended_at = e.timestamp;
        a.steps = r.steps;
        a.timeline = attemptTimeline(a.steps, a.model_calls);
        a.verification = r.verification;
        a.summary = r.summary;
        a.error = r.error ?? null;
        a.usage = r.usage;
        a.duration_ms = r.duration_ms;
        a.changes = r.changes ?? null;
        // A task the cancel stopped fails; on the page it is cancelled.
        if (t.state !== "merged")
          t.state =
            r.status === "succeeded" ? "succeeded" : m.cancelRequested ? "cancelled" : "failed";
        return;
      }
      case "task_merged": {
        const t = taskOf(m, e.task_id);
        attemptOf(t, e.payload.attempt).merged = e.payload;
        t.state = "merged";
        return;
      }
      case "task_conflicted": {
        const t = taskOf(m, e.task_id);
        attemptOf(t, e.payload.attempt).conflicted = e.payload;
        t.state = "conflicted";
        return;
      }
      default:
        return;
    }
  }

  function applyMissionEvent(e: SquadEvent, m: MissionRecord): void {
    switch (e.type) {
      case "mission_submitted":
        m.submittedBy = e.source;
        m.submittedAt ??= e.timestamp;
        return;
      case "mission_planned": {
        const p = e.payload;
        m.title = p.title || m.id;
        m.planner = p.planner;
        m.revision = p.revision;
        m.strategy = p.plan.strategy;
        m.plannedAt ??= e.timestamp;
        if (p.submitted_at) m.submittedAt = p.submitted_at;
        m.budget = { tokens: p.budget?.tokens ?? null, time_s: p.budget?.time_s ?? null };
        m.waves = p.plan.waves.map((w) => ({ wave: w.wave, task_ids: w.tasks.map((t) => t.id) }));
        for (const [i, w] of p.plan.waves.entries()) {
          const previous = i > 0 ? p.plan.waves[i - 1]!.tasks.map((t) => t.id) : [];
          for (const pt of w.tasks) {
            const t = taskOf(m, pt.id, pt.agent);
            t.agent = pt.agent;
            t.title = pt.title;
            t.wave = w.wave;
            t.depends_on = pt.depends_on ?? previous;
            t.run = pt.run ?? [];
            t.verify = pt.verify ?? [];
          }
        }
        if (m.status === "submitted") m.status = "planned";
        return;
      }
      case "wave_started":
        if (m.status === "planned" || m.status === "submitted") m.status = "running";
        return;
      case "mission_completed":
        m.status = "completed";
        m.endedAt = e.timestamp;
        m.reason = e.payload.summary;
        return;
      case "mission_failed":
        m.status = "failed";
        m.endedAt = e.timestamp;
        m.reason = e.payload.reason;
        return;
      case "mission_cancelled":
        // The request (source cli) and the orchestrator's end are both mission_cancelled.
        if (e.source === "orchestrator" || e.payload.requested_by === undefined) {
          m.status = "cancelled";
          m.endedAt = e.timestamp;
          for (const t of m.tasks.values()) if (!FINAL.has(t.state)) t.state = "cancelled";
        }
        m.reason = e.payload.reason;
        m.cancelRequested = true;
        return;
      default:
        if (e.type.startsWith("task_")) {
          applyTaskEvent(e, m);
          if (m.status === "planned" && (e.type === "task_assigned" || e.type === "task_started"))
            m.status = "running";
        }
    }
  }

  function applyStatus(e: SquadEvent): void {
    if (e.type === "agent_online") {
      const p = e.payload;
      const r = replicaOf(p.agent, p.instance, e.timestamp);
      Object.assign(r, {
        online: true,
        host: p.host,
        pid: p.pid,
        model: p.model,
        concurrency: p.concurrency,
        reason: null,
      });
    } else if (e.type === "agent_heartbeat") {
      const p = e.payload;
      const r = replicaOf(p.agent, p.instance, e.timestamp);
      Object.assign(r, {
        online: true,
        in_flight: p.in_flight,
        completed: p.completed,
        failed: p.failed,
      });
    } else if (e.type === "agent_offline") {
      const p = e.payload;
      const r = replicaOf(p.agent, p.instance, e.timestamp);
      Object.assign(r, { online: false, in_flight: 0, reason: p.reason });
    }
  }

  function replicaOf(agent: string, instance: string, at: string): ReplicaView {
    const key = replicaKey(agent, instance);
    let r = replicas.get(key);
    if (!r) {
      r = {
        agent,
        instance,
        online: true,
        host: null,
        pid: null,
        model: null,
        concurrency: null,
        in_flight: 0,
        completed: 0,
        failed: 0,
        last_seen: at,
        reason: null,
      };
      replicas.set(key, r);
    }
    // Status events of one instance can arrive out of order (history, then live): keep the newest.
    if (at >= r.last_seen) r.last_seen = at;
    return r;
  }

  function summary(m: MissionRecord, now: Date): MissionSummary {
    if (m.stub) return stubSummary(m.stub);
    const tasks = [...m.tasks.values()];
    const tokens: Record<string, TokenCount> = {};
    for (const t of tasks)
      for (const a of t.attempts) {
        if (!a.usage) continue;
        const k = a.usage.model ?? "run-only";
        const c = (tokens[k] ??= { input_tokens: 0, output_tokens: 0 });
        c.input_tokens += a.usage.input_tokens;
        c.output_tokens += a.usage.output_tokens;
      }
    const start = m.submittedAt ?? m.plannedAt;
    const end = m.endedAt ? Date.parse(m.endedAt) : now.getTime();
    return {
      id: m.id,
      title: m.title,
      status: m.status,
      submitted_by: m.submittedBy,
      submitted_at: start,
      ended_at: m.endedAt,
      duration_ms: start ? Math.max(0, end - Date.parse(start)) : null,
      progress: {
        total: tasks.length,
        succeeded: tasks.filter((t) => t.state === "succeeded" || t.state === "merged").length,
        failed: tasks.filter((t) => t.state === "failed").length,
        running: tasks.filter((t) => t.state === "running" || t.state === "assigned").length,
      },
      tokens,
      reason: m.reason,
    };
  }

  return {
    apply(e) {
      if (seen.has(e.id)) return false;
      seen.add(e.id);
      if (seen.size > window) seen.delete(seen.values().next().value!);
      if (e.type === "agent_online" || e.type === "agent_heartbeat" || e.type === "agent_offline") {
        applyStatus(e);
        return true;
      }
      if (e.type === "approval_requested") {
        const id = e.payload.approval_id;
        resolved.delete(id);
        pending.set(id, {
          approval_id: id,
          mission_id: e.mission_id,
          task_id: e.task_id,
          agent: e.payload.agent,
          worker: e.payload.worker,
          command: e.payload.command,
          reason: e.payload.reason,
          requested_at: e.timestamp,
          timeout_s: e.payload.timeout_s,
        });
        return true;
      }
      if (e.type === "approval_resolved") {
        pending.delete(e.payload.approval_id);
        resolved.add(e.payload.approval_id);
        return true;
      }
      if (e.mission_id) applyMissionEvent(e, missionOf(e.mission_id));
      return true;
    },
    applySummary(s) {
      if (!isFinishedStanding(s.state)) return; // unfinished: its events are replayed
      const known = missions.get(s.mission_id);
      if (known && !known.stub) return;
      const m = missionOf(s.mission_id);
      m.stub = s;
      m.title = s.title ?? s.mission_id;
      m.status = s.state;
      m.submittedBy = s.submitted_by;
      m.submittedAt = s.submitted_at;
      m.endedAt = s.ended_at;
      m.reason = s.reason;
      m.planner = s.planner;
      m.revision = s.revision;
    },
    historyOf(id) {
      const m = missions.get(id);
      if (!m?.stub || m.historyAsked) return null;
      m.historyAsked = true;
      return { fromSeq: Math.max(1, m.stub.first_seq), toSeq: m.stub.last_seq };
    },
    historyLoaded(id) {
      const m = missions.get(id);
      if (m) m.stub = null;
    },
    applyDeadLetter(record, subject) {
      dead.push({ ...record, subject });
      if (dead.length > maxDead) dead.splice(0, dead.length - maxDead);
    },
    missions(now) {
      return [...missions.values()]
        .map((m) => summary(m, now))
        .sort((a, b) => (b.submitted_at ?? "").localeCompare(a.submitted_at ?? ""));
    },
    mission(id, now) {
      const m = missions.get(id);
      if (!m) return null;
      const tasks = [...m.tasks.values()];
      const ids = new Set(tasks.map((t) => t.id));
      const edges = tasks.flatMap((t) =>
        t.depends_on.filter((d) => ids.has(d)).map((d) => ({ from: d, to: t.id })),
      );
      const path = criticalPath(
        tasks.map((t) => ({
          id: t.id,
          depends_on: t.depends_on,
          weight: lastDuration(t) ?? 1,
        })),
      );
      const onPath = new Set(path);
      const s = summary(m, now);
      const used = Object.values(s.tokens).reduce(
        (n, c) => n + c.input_tokens + c.output_tokens,
        0,
      );
      return {
        ...s,
        strategy: m.strategy,
        planner: m.planner,
        revision: m.revision,
        budget: m.budget,
        used: { tokens: used, time_s: s.duration_ms === null ? null : s.duration_ms / 1000 },
        waves: m.waves,
        tasks: tasks
          .sort((a, b) => a.wave - b.wave || a.id.localeCompare(b.id))
          .map((t) => ({ ...t, critical: onPath.has(t.id) })),
        edges,
        critical_path: path,
      };
    },
    task(missionId, taskId) {
      return missions.get(missionId)?.tasks.get(taskId) ?? null;
    },
    replicas() {
      return [...replicas.values()].sort(
        (a, b) => a.agent.localeCompare(b.agent) || a.instance.localeCompare(b.instance),
      );
    },
    approvals() {
      return [...pending.values()].sort((a, b) => a.requested_at.localeCompare(b.requested_at));
    },
    deadLetters() {
      return [...dead].reverse();
    },
  };
}

/**
 * An attempt's model calls and steps in the order they happened: each call
 * before the step its `steps_before` names (it counts the steps that came
 * before it), calls in their number's order; one past the last step (a
 * result cut to fit max_payload has fewer steps) goes at the end.
 */
export function attemptTimeline(
  steps: readonly Step[],
  calls: readonly Pick<ModelCallView, "call" | "steps_before">[],
): TimelineEntry[] {
  const order = calls
    .map((c, index) => ({ index, call: c.call, before: c.steps_before }))
    .sort((x, y) => x.call - y.call || x.index - y.index);
  const out: TimelineEntry[] = [];
  let next = 0;
  for (let s = 0; s <= steps.length; s++) {
    // A call never goes before one with a lower number, even if it names fewer steps.
    while (next < order.length && (order[next]!.before <= s || s === steps.length)) {
      out.push({ kind: "model", index: order[next]!.index });
      next++;
    }
    if (s < steps.length) out.push({ kind: "step", index: s });
  }
  return out;
}

function stubSummary(s: MissionSummaryValue): MissionSummary {
  const start = s.submitted_at;
  return {
    id: s.mission_id,
    title: s.title ?? s.mission_id,
    status: s.state,
    submitted_by: s.submitted_by,
    submitted_at: start,
    ended_at: s.ended_at,
    duration_ms:
      start && s.ended_at ? Math.max(0, Date.parse(s.ended_at) - Date.parse(start)) : null,
    progress: s.tasks,
    tokens: s.tokens,
    reason: s.reason,
  };
}

function lastDuration(t: TaskView): number | null {
  for (let i = t.attempts.length - 1; i >= 0; i--) {
    const d = t.attempts[i]!.duration_ms;
    if (d !== null) return d;
  }
  return null;
}
