/**
 * The mission view (KV bucket `squad_mission_view`): where every mission
 * stands, kept by the orchestrators as they read SQUAD_EVENTS, so that
 * `swarm status`, the dashboard's mission list and an orchestrator's start
 * read current state in bounded time instead of replaying the whole stream.
 * Additive to the contract: the events stay the truth, the view is derived
 * from them (src/orchestrator/mission-view.ts) and can be rebuilt.
 *
 * Keys: `mission.<mission_id>` → MissionSummaryValue; `index` →
 * MissionViewIndex (the unfinished missions, the most recently finished ones,
 * and how far the view has read the stream). Every value carries `schema`;
 * a reader that finds another number says so instead of guessing.
 */
import { z } from "zod";
import { MissionId } from "./identifiers.ts";

export const MISSION_VIEW_BUCKET = "squad_mission_view";
/** The version of the values below; a reader refuses other versions by name. */
export const MISSION_VIEW_SCHEMA = 1;
export const MISSION_VIEW_INDEX_KEY = "index";
/** Finished missions the index names (newest last); older ones keep their key, unlisted. */
export const MISSION_VIEW_FINISHED_KEPT = 1000;

export function missionViewKey(missionId: string): string {
  return `mission.${missionId}`;
}

export const MISSION_STANDINGS = [
  "submitted",
  "planned",
  "running",
  "completed",
  "failed",
  "cancelled",
] as const;
export const MissionStanding = z.enum(MISSION_STANDINGS);
export type MissionStanding = z.infer<typeof MissionStanding>;

export function isFinishedStanding(state: MissionStanding): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

const Count = z.number().int().nonnegative();
const Seq = z.number().int().nonnegative();
const Time = z.iso.datetime({ offset: true });
const TokenCount = z.object({ input_tokens: Count, output_tokens: Count });

export const MissionSummaryValue = z.object({
  schema: z.literal(MISSION_VIEW_SCHEMA),
  mission_id: MissionId,
  title: z.string().nullable(),
  /** submitted: waiting for an orchestrator; planned: no wave started yet. */
  state: MissionStanding,
  /** Someone asked to cancel and the orchestrator has not answered yet. */
  cancel_requested: z.boolean(),
  /** Model spec of the planner, null for an explicit plan. */
  planner: z.string().nullable(),
  /** Plan revision in force. */
  revision: Count,
  tasks: z.object({ total: Count, succeeded: Count, failed: Count, running: Count }),
  /** The `source` of the submission (mission_planned.submitted_by). */
  submitted_by: z.string().nullable(),
  submitted_at: Time.nullable(),
  /** The first wave_started. */
  started_at: Time.nullable(),
  /** The orchestrator's final event. */
  ended_at: Time.nullable(),
  last_event_at: Time,
  last_event_type: z.string(),
  /** Failure or cancellation reason. */
  reason: z.string().nullable(),
  report: z.string().nullable(),
  /** The final event's totals. */
  usage: TokenCount.nullable(),
  /** Tokens of the tasks' results by model spec (`run-only` for tasks without a model). */
  tokens: z.record(z.string(), TokenCount),
  /** SQUAD_EVENTS sequence of the mission's first and last event folded in (resume reads from first_seq). */
  first_seq: Seq,
  last_seq: Seq,
  /** Fold state: the plan in force's task ids, each task's latest state, totals fixed by the final event. */
  plan_tasks: z.array(z.string()),
  task_states: z.record(z.string(), z.enum(["running", "succeeded", "failed"])),
  counts_final: z.boolean(),
});
export type MissionSummaryValue = z.infer<typeof MissionSummaryValue>;

export const MissionViewIndex = z.object({
  schema: z.literal(MISSION_VIEW_SCHEMA),
  /** Every event of SQUAD_EVENTS up to this sequence is in the view. */
  watermark: Seq,
  /** Unfinished missions and where their events start. */
  active: z.array(z.object({ mission_id: MissionId, first_seq: Seq })),
  /** Most recently finished missions, oldest first (at most MISSION_VIEW_FINISHED_KEPT). */
  finished: z.array(MissionId),
  updated_at: Time,
});
export type MissionViewIndex = z.infer<typeof MissionViewIndex>;

/** Only the version, read first: a value of another version is named, not misparsed. */
export const MissionViewVersion = z.object({ schema: z.number().int() });

/**
 * Where a replay of SQUAD_EVENTS must start so that every unfinished
 * mission is read whole, and everything the view has not folded yet: an
 * orchestrator's start, the dashboard's first load.
 */
export function resumeFrom(index: MissionViewIndex): number {
  return Math.min(index.watermark + 1, ...index.active.map((a) => Math.max(1, a.first_seq)));
}
