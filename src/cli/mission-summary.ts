/**
 * Where each mission stands, folded from its recorded events (pure). What
 * `swarm status` lists and what `swarm cancel` checks before it sends anything.
 */
import type { EventOf, SquadEvent } from "../schema/index.ts";

export const MISSION_STANDINGS = [
  "submitted",
  "planned",
  "running",
  "completed",
  "failed",
  "cancelled",
] as const;
export type MissionStanding = (typeof MISSION_STANDINGS)[number];

export interface MissionOverview {
  mission_id: string;
  title: string | null;
  /** submitted: waiting for an orchestrator; planned: no wave started yet. */
  state: MissionStanding;
  /** Someone asked to cancel and the orchestrator has not answered yet. */
  cancel_requested: boolean;
  /** Model spec of the planner, null for an explicit plan. */
  planner: string | null;
  /** Plan revision in force (0 unless the planner revised the plan). */
  revision: number;
  tasks: { total: number; succeeded: number; failed: number; running: number };
  submitted_at: string | null;
  last_event_at: string;
  last_event_type: string;
  /** Failure or cancellation reason. */
  reason: string | null;
  report: string | null;
  usage: { input_tokens: number; output_tokens: number } | null;
}

export function isFinished(state: MissionStanding): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

type TaskState = "running" | "succeeded" | "failed";

interface Fold {
  summary: MissionOverview;
  planTasks: Set<string>;
  taskState: Map<string, TaskState>;
  finalCounts: MissionOverview["tasks"] | null;
}

/**
 * One summary per mission, most recently active first. `submissions` are
 * `mission_submitted` events not yet taken (SQUAD_MISSIONS); a mission with
 * recorded events is past that stage whatever the queue still holds.
 */
export function summarizeMissions(
  events: Iterable<SquadEvent>,
  submissions: Iterable<EventOf<"mission_submitted">> = [],
  titleOf: (brief: string) => string | null = briefTitle,
): MissionOverview[] {
  const folds = new Map<string, Fold>();
  for (const e of events) {
    if (!e.mission_id) continue;
    let f = folds.get(e.mission_id);
    if (!f) {
      f = newFold(e.mission_id, e);
      folds.set(e.mission_id, f);
    }
    apply(f, e);
  }
  for (const s of submissions) {
    if (!s.mission_id || folds.has(s.mission_id)) continue;
    const f = newFold(s.mission_id, s);
    f.summary.title = titleOf(s.payload.brief);
    f.summary.submitted_at = s.timestamp;
    folds.set(s.mission_id, f);
  }
  return [...folds.values()]
    .map(finish)
    .sort(
      (a, b) =>
        b.last_event_at.localeCompare(a.last_event_at) || a.mission_id.localeCompare(b.mission_id),
    );
}

function newFold(missionId: string, first: SquadEvent): Fold {
  return {
    summary: {
      mission_id: missionId,
      title: null,
      state: "submitted",
      cancel_requested: false,
      planner: null,
      revision: 0,
      tasks: { total: 0, succeeded: 0, failed: 0, running: 0 },
      submitted_at: null,
      last_event_at: first.timestamp,
      last_event_type: first.type,
      reason: null,
      report: null,
      usage: null,
    },
    planTasks: new Set(),
    taskState: new Map(),
    finalCounts: null,
  };
}

function apply(f: Fold, e: SquadEvent): void {
  const s = f.summary;
  if (e.timestamp >= s.last_event_at) {
    s.last_event_at = e.timestamp;
    s.last_event_type = e.type;
  }
  const done = isFinished(s.state);
  switch (e.type) {
    case "mission_submitted":
      s.submitted_at ??= e.timestamp;
      return;
    case "mission_planned":
      s.title = e.payload.title;
      s.planner = e.payload.planner;
      s.submitted_at ??= e.payload.submitted_at ?? null;
      if (e.payload.revision >= s.revision) {
        s.revision = e.payload.revision;
        f.planTasks = new Set(e.payload.plan.waves.flatMap((w) => w.tasks.map((t) => t.id)));
      }
      if (s.state === "submitted") s.state = "planned";
      return;
    case "wave_started":
    case "task_assigned":
      if (!done) s.state = "running";
      return;
    case "task_started":
    case "task_progress":
    case "task_model_called":
      if (!done) s.state = "running";
      if (e.task_id && f.taskState.get(e.task_id) !== "succeeded")
        f.taskState.set(e.task_id, "running");
      return;
    case "task_completed":
      if (!done) s.state = "running";
      if (e.task_id) f.taskState.set(e.task_id, "succeeded");
      return;
    case "task_failed":
      if (!done) s.state = "running";
      if (e.task_id && f.taskState.get(e.task_id) !== "succeeded")
        f.taskState.set(e.task_id, "failed");
      return;
    case "mission_completed":
      s.state = "completed";
      s.cancel_requested = false;
      s.report = e.payload.report;
      s.usage = e.payload.usage;
      f.finalCounts = { ...e.payload.tasks, running: 0 };
      return;
    case "mission_failed":
      s.state = "failed";
      s.cancel_requested = false;
      s.reason = e.payload.reason;
      s.report = e.payload.report ?? null;
      s.usage = e.payload.usage ?? null;
      if (e.payload.tasks) f.finalCounts = { ...e.payload.tasks, running: 0 };
      return;
    case "mission_cancelled":
      if (e.source === "orchestrator") {
        s.state = "cancelled";
        s.cancel_requested = false;
        s.reason = e.payload.reason;
      } else if (!done) {
        s.cancel_requested = true;
        s.reason = e.payload.reason;
      }
      return;
    default:
      return;
  }
}

function finish(f: Fold): MissionOverview {
  const s = f.summary;
  if (f.finalCounts) {
    s.tasks = f.finalCounts;
    return s;
  }
  // Tasks of the plan in force, plus any that already succeeded under an earlier revision.
  const ids = new Set(f.planTasks);
  for (const [id, st] of f.taskState) if (st === "succeeded") ids.add(id);
  const counts = { total: ids.size, succeeded: 0, failed: 0, running: 0 };
  for (const id of ids) {
    const st = f.taskState.get(id);
    if (st === "succeeded") counts.succeeded++;
    else if (st === "failed") counts.failed++;
    else if (st === "running" && !isFinished(s.state)) counts.running++;
  }
  s.tasks = counts;
  return s;
}

/** The `title:` of a brief's front matter, else its first heading (no full parse: display only). */
export function briefTitle(brief: string): string | null {
  const fm = /^---\r?\n([\s\S]*?)\r?\n---/.exec(brief);
  const t = fm ? /^title:\s*(.+)$/m.exec(fm[1]!) : null;
  if (t) return t[1]!.trim().replace(/^(["'])(.*)\1$/, "$2") || null;
  const h = /^#\s+(.+)$/m.exec(fm ? brief.slice(fm[0].length) : brief);
  return h ? h[1]!.trim() : null;
}
