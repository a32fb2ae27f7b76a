/**
 * The mission view's update functions (pure, and one in-place variant for
 * the orchestrator's writer): one event of SQUAD_EVENTS
 * folded into a mission's summary, and the summary's place in the index
 * (src/schema/mission-view.ts). Both are idempotent by stream sequence: an
 * event at or below what a value has already folded changes nothing, so a
 * replay, a second orchestrator or a retried write can apply it again.
 */
import {
  MISSION_VIEW_FINISHED_KEPT,
  MISSION_VIEW_SCHEMA,
  isFinishedStanding,
  type MissionSummaryValue,
  type MissionViewIndex,
  type SquadEvent,
} from "../schema/index.ts";

export function emptySummary(
  missionId: string,
  first: SquadEvent,
  seq: number,
): MissionSummaryValue {
  return {
    schema: MISSION_VIEW_SCHEMA,
    mission_id: missionId,
    title: null,
    state: "submitted",
    cancel_requested: false,
    planner: null,
    revision: 0,
    tasks: { total: 0, succeeded: 0, failed: 0, running: 0 },
    submitted_by: null,
    submitted_at: null,
    started_at: null,
    ended_at: null,
    last_event_at: first.timestamp,
    last_event_type: first.type,
    reason: null,
    report: null,
    usage: null,
    tokens: {},
    first_seq: seq,
    last_seq: 0,
    plan_tasks: [],
    task_states: {},
    counts_final: false,
  };
}

/**
 * `prev` with `event` (at stream sequence `seq`, 0 when it has none, e.g. a
 * submission still queued) folded in; `prev` itself when the event is not
 * about a mission or was folded already. Copy-on-write: `prev` is never changed.
 */
export function foldMissionEvent(
  prev: MissionSummaryValue | undefined,
  event: SquadEvent,
  seq: number,
): MissionSummaryValue | undefined {
  const id = event.mission_id;
  if (!id || (prev && seq > 0 && seq <= prev.last_seq)) return prev;
  const s: MissionSummaryValue = prev
    ? {
        ...prev,
        tasks: { ...prev.tasks },
        tokens: { ...prev.tokens },
        task_states: { ...prev.task_states },
      }
    : emptySummary(id, event, seq);
  foldInto(s, event, seq);
  settleTaskCounts(s);
  return s;
}

/**
 * The orchestrator's hot path: `event` folded into `s` in place, which the
 * caller owns (never shared, never frozen), and the task counts left as
 * they were: `settleTaskCounts` brings them up to date before the value is
 * read or written. A copy and a count per event cost a mission of n tasks
 * O(n) per event; this is O(1). False when `event` is not this mission's or
 * was folded already (nothing changed).
 */
export function foldMissionEventInPlace(
  s: MissionSummaryValue,
  event: SquadEvent,
  seq: number,
): boolean {
  if (event.mission_id !== s.mission_id || (seq > 0 && seq <= s.last_seq)) return false;
  foldInto(s, event, seq);
  return true;
}

/** `s.tasks` from the plan in force and each task's state (unless the final event fixed them). */
export function settleTaskCounts(s: MissionSummaryValue): void {
  if (!s.counts_final) s.tasks = countTasks(s);
}

function foldInto(s: MissionSummaryValue, event: SquadEvent, seq: number): void {
  if (s.first_seq === 0 && seq > 0) s.first_seq = seq;
  s.last_seq = Math.max(s.last_seq, seq);
  if (event.timestamp >= s.last_event_at) {
    s.last_event_at = event.timestamp;
    s.last_event_type = event.type;
  }
  apply(s, event);
}

function apply(s: MissionSummaryValue, e: SquadEvent): void {
  const done = isFinishedStanding(s.state);
  const running = () => {
    if (!done) s.state = "running";
  };
  const setTask = (state: "running" | "succeeded" | "failed") => {
    if (!e.task_id) return;
    if (state !== "succeeded" && s.task_states[e.task_id] === "succeeded") return;
    s.task_states[e.task_id] = state;
  };
  switch (e.type) {
    case "mission_submitted":
      s.submitted_at ??= e.timestamp;
      s.submitted_by ??= e.source;
      return;
    case "mission_planned":
      s.title = e.payload.title;
      s.planner = e.payload.planner;
      s.submitted_at ??= e.payload.submitted_at ?? null;
      s.submitted_by ??= e.payload.submitted_by ?? null;
      if (e.payload.revision >= s.revision) {
        s.revision = e.payload.revision;
        s.plan_tasks = e.payload.plan.waves.flatMap((w) => w.tasks.map((t) => t.id));
      }
      if (s.state === "submitted") s.state = "planned";
      return;
    case "wave_started":
      s.started_at ??= e.timestamp;
      running();
      return;
    case "task_assigned":
      running();
      return;
    case "task_started":
    case "task_progress":
    case "task_model_called":
      running();
      setTask("running");
      return;
    case "task_completed":
    case "task_failed": {
      running();
      setTask(e.type === "task_completed" ? "succeeded" : "failed");
      const u = e.payload.result.usage;
      const model = u.model ?? "run-only";
      const t = s.tokens[model] ?? { input_tokens: 0, output_tokens: 0 };
      s.tokens[model] = {
        input_tokens: t.input_tokens + u.input_tokens,
        output_tokens: t.output_tokens + u.output_tokens,
      };
      return;
    }
    case "mission_completed":
      end(s, e.timestamp, "completed");
      s.report = e.payload.report;
      s.usage = e.payload.usage;
      s.tasks = { ...e.payload.tasks, running: 0 };
      s.counts_final = true;
      return;
    case "mission_failed":
      end(s, e.timestamp, "failed");
      s.reason = e.payload.reason;
      s.report = e.payload.report ?? null;
      s.usage = e.payload.usage ?? null;
      if (e.payload.tasks) {
        s.tasks = { ...e.payload.tasks, running: 0 };
        s.counts_final = true;
      }
      return;
    case "mission_cancelled":
      // Only the orchestrator's cancellation ends a mission; anyone else's is a request.
      if (e.source === "orchestrator") {
        end(s, e.timestamp, "cancelled");
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

function end(s: MissionSummaryValue, at: string, state: MissionSummaryValue["state"]): void {
  s.state = state;
  s.cancel_requested = false;
  s.ended_at ??= at;
}

/** Tasks of the plan in force, plus any that already succeeded under an earlier revision. */
function countTasks(s: MissionSummaryValue): MissionSummaryValue["tasks"] {
  const ids = new Set(s.plan_tasks);
  for (const [id, st] of Object.entries(s.task_states)) if (st === "succeeded") ids.add(id);
  const counts = { total: ids.size, succeeded: 0, failed: 0, running: 0 };
  for (const id of ids) {
    const st = s.task_states[id];
    if (st === "succeeded") counts.succeeded++;
    else if (st === "failed") counts.failed++;
    else if (st === "running" && !isFinishedStanding(s.state)) counts.running++;
  }
  return counts;
}

export function emptyIndex(now: string): MissionViewIndex {
  return { schema: MISSION_VIEW_SCHEMA, watermark: 0, active: [], finished: [], updated_at: now };
}

/**
 * The index with these summaries in their place (planned, unfinished: in `active`;
 * finished: out of it, at the end of `finished`) and the watermark raised to
 * `watermark` (never lowered: another writer may have read further). `prev`
 * itself when nothing changes, so a caller knows no write is needed.
 */
export function placeInIndex(
  prev: MissionViewIndex,
  summaries: readonly MissionSummaryValue[],
  watermark: number,
  now: string,
): MissionViewIndex {
  let active = prev.active;
  let finished = prev.finished;
  for (const s of summaries) {
    const isActive = active.some((a) => a.mission_id === s.mission_id);
    if (isFinishedStanding(s.state)) {
      if (isActive) active = active.filter((a) => a.mission_id !== s.mission_id);
      if (!finished.includes(s.mission_id)) finished = [...finished, s.mission_id];
    } else if (s.state !== "submitted" && !isActive && !finished.includes(s.mission_id)) {
      // Planned: resumable. A mission with only a request (a cancel of an unknown id) never
      // ends, so it must not hold every later start's replay back.
      active = [...active, { mission_id: s.mission_id, first_seq: s.first_seq }];
    }
  }
  if (finished.length > MISSION_VIEW_FINISHED_KEPT)
    finished = finished.slice(finished.length - MISSION_VIEW_FINISHED_KEPT);
  const mark = Math.max(prev.watermark, watermark);
  if (active === prev.active && finished === prev.finished && mark === prev.watermark) return prev;
  return { ...prev, active, finished, watermark: mark, updated_at: now };
}
