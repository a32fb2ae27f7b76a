/**
 * Event types that several parts of the swarm treat alike, named once: what
 * ends a mission, what reports a task's result, what says how a replica is.
 */
import type { EventOf, EventType, SquadEvent } from "./events.ts";

/** The events that end a mission. */
export const MISSION_END_TYPES = [
  "mission_completed",
  "mission_failed",
  "mission_cancelled",
] as const;
export type MissionEndType = (typeof MISSION_END_TYPES)[number];
export type FinalMissionEvent = EventOf<MissionEndType>;

export function isMissionEndType(type: string): type is MissionEndType {
  return (MISSION_END_TYPES as readonly string[]).includes(type);
}

/**
 * The orchestrator's final event for a mission. A mission_cancelled from
 * anyone else is a request the orchestrator may not have acted on yet.
 */
export function isFinalMissionEvent(e: SquadEvent): e is FinalMissionEvent {
  return (
    e.type === "mission_completed" ||
    e.type === "mission_failed" ||
    (e.type === "mission_cancelled" && e.source === "orchestrator")
  );
}

/** The events that carry a task attempt's result. */
export const TASK_RESULT_TYPES = ["task_completed", "task_failed"] as const satisfies EventType[];
export type TaskResultEvent = EventOf<(typeof TASK_RESULT_TYPES)[number]>;

export function isTaskResultEvent(e: SquadEvent): e is TaskResultEvent {
  return e.type === "task_completed" || e.type === "task_failed";
}

/**
 * What a task reports while it runs: its steps (task_progress) and model calls
 * (task_model_called). Many per task, for watchers; nothing decides on them.
 */
export const PROGRESS_TYPES = ["task_progress", "task_model_called"] as const satisfies EventType[];

export function isProgressType(type: string): type is (typeof PROGRESS_TYPES)[number] {
  return type === "task_progress" || type === "task_model_called";
}

/** A replica's status events, on `squad.status.<agent>.<instance>`. */
export const STATUS_TYPES = [
  "agent_online",
  "agent_heartbeat",
  "agent_offline",
] as const satisfies EventType[];
export type StatusEvent = EventOf<(typeof STATUS_TYPES)[number]>;

export function isStatusEvent(e: SquadEvent): e is StatusEvent {
  return e.type === "agent_online" || e.type === "agent_heartbeat" || e.type === "agent_offline";
}
