/**
 * Where each mission stands, as `swarm status` lists it and `swarm cancel`
 * checks it: the mission view's summaries (src/orchestrator/mission-view.ts
 * folds them, the orchestrator keeps them in KV) in the CLI's shape, or the
 * same fold over recorded events when asked to read SQUAD_EVENTS itself.
 */
import { foldMissionEvent } from "../orchestrator/mission-view.ts";
import {
  isFinishedStanding,
  MISSION_STANDINGS,
  type EventOf,
  type MissionStanding,
  type MissionSummaryValue,
  type SquadEvent,
} from "../schema/index.ts";

export { MISSION_STANDINGS, type MissionStanding };

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
  submitted_by: string | null;
  submitted_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  last_event_at: string;
  last_event_type: string;
  /** Failure or cancellation reason. */
  reason: string | null;
  report: string | null;
  usage: { input_tokens: number; output_tokens: number } | null;
  /** The tasks' tokens by model spec. */
  tokens: Record<string, { input_tokens: number; output_tokens: number }>;
}

export function isFinished(state: MissionStanding): boolean {
  return isFinishedStanding(state);
}

/** A view summary without the fold's bookkeeping. */
export function overviewOf(s: MissionSummaryValue): MissionOverview {
  return {
    mission_id: s.mission_id,
    title: s.title,
    state: s.state,
    cancel_requested: s.cancel_requested,
    planner: s.planner,
    revision: s.revision,
    tasks: s.tasks,
    submitted_by: s.submitted_by,
    submitted_at: s.submitted_at,
    started_at: s.started_at,
    ended_at: s.ended_at,
    last_event_at: s.last_event_at,
    last_event_type: s.last_event_type,
    reason: s.reason,
    report: s.report,
    usage: s.usage,
    tokens: s.tokens,
  };
}

/**
 * One summary per mission, most recently active first: `summaries` (the
 * view's), then `submissions` (mission_submitted events not yet taken,
 * SQUAD_MISSIONS) of missions the summaries do not know.
 */
export function listMissions(
  summaries: Iterable<MissionSummaryValue>,
  submissions: Iterable<EventOf<"mission_submitted">> = [],
  titleOf: (brief: string) => string | null = briefTitle,
): MissionOverview[] {
  const byId = new Map<string, MissionOverview>();
  for (const s of summaries) byId.set(s.mission_id, overviewOf(s));
  for (const e of submissions) {
    if (!e.mission_id || byId.has(e.mission_id)) continue;
    const s = foldMissionEvent(undefined, e, 0);
    if (s) byId.set(s.mission_id, { ...overviewOf(s), title: titleOf(e.payload.brief) });
  }
  return [...byId.values()].sort(
    (a, b) =>
      b.last_event_at.localeCompare(a.last_event_at) || a.mission_id.localeCompare(b.mission_id),
  );
}

/** The same from recorded events, in stream order (the fold the orchestrator keeps in the view). */
export function summarizeMissions(
  events: Iterable<SquadEvent>,
  submissions: Iterable<EventOf<"mission_submitted">> = [],
  titleOf: (brief: string) => string | null = briefTitle,
): MissionOverview[] {
  const folds = new Map<string, MissionSummaryValue>();
  let seq = 0;
  for (const e of events) {
    seq++;
    if (!e.mission_id) continue;
    const next = foldMissionEvent(folds.get(e.mission_id), e, seq);
    if (next) folds.set(e.mission_id, next);
  }
  return listMissions(folds.values(), submissions, titleOf);
}

/** The `title:` of a brief's front matter, else its first heading (no full parse: display only). */
export function briefTitle(brief: string): string | null {
  const fm = /^---\r?\n([\s\S]*?)\r?\n---/.exec(brief);
  const t = fm ? /^title:\s*(.+)$/m.exec(fm[1]!) : null;
  if (t) return t[1]!.trim().replace(/^(["'])(.*)\1$/, "$2") || null;
  const h = /^#\s+(.+)$/m.exec(fm ? brief.slice(fm[0].length) : brief);
  return h ? h[1]!.trim() : null;
}
