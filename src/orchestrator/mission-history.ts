/**
 * Recorded contract events → machine inputs, to rebuild a mission after a
 * crash: `replay(createMission(...), inputsFromEvents(events))`.
 *
 * Mapped: mission_planned (revision 0 → planned, n → the answer to the n-th
 * replan; revision 0 also gives the workspace's base), task_started,
 * task_completed / task_failed (→ task_result, which includes the task_failed
 * the orchestrator wrote for a timeout), task_merged / task_conflicted (the
 * merge queue's answers) and mission_cancelled (→ cancel). Everything else the machine either produced
 * itself (waves, mission outcomes) or does not need. Each input's `now` is
 * its event's timestamp, so replay sees the times the live run saw.
 */
import { isFinalMissionEvent } from "../schema/event-groups.ts";
import type { SquadEvent } from "../schema/events.ts";
import type { MissionInput } from "./mission-state.ts";

/** The machine input for one recorded event, or null when the machine has no use for it. */
export function inputFromEvent(event: SquadEvent): MissionInput | null {
  const now = Date.parse(event.timestamp);
  switch (event.type) {
    case "mission_planned":
      return {
        type: "planned",
        now,
        plan: event.payload.plan,
        revision: event.payload.revision,
        ...(event.payload.workspace ? { workspace: { base: event.payload.workspace.base } } : {}),
      };
    case "task_started":
      if (event.task_id === null) return null;
      return {
        type: "task_started",
        now,
        task_id: event.task_id,
        attempt: event.payload.attempt,
        worker: event.payload.worker,
        ...(event.payload.delivery !== undefined ? { delivery: event.payload.delivery } : {}),
      };
    case "task_completed":
    case "task_failed":
      if (event.task_id === null) return null;
      return {
        type: "task_result",
        now,
        task_id: event.task_id,
        attempt: event.payload.result.attempt,
        result: event.payload.result,
      };
    case "task_merged":
      if (event.task_id === null) return null;
      return {
        type: "task_merged",
        now,
        task_id: event.task_id,
        attempt: event.payload.attempt,
        commit: event.payload.commit,
        merged: event.payload.merged,
        onto: event.payload.onto,
        head: event.payload.head,
      };
    case "task_conflicted":
      if (event.task_id === null) return null;
      return {
        type: "task_conflicted",
        now,
        task_id: event.task_id,
        attempt: event.payload.attempt,
        reason: event.payload.reason,
        files: event.payload.files,
        error: event.payload.error,
      };
    case "mission_cancelled":
      return {
        type: "cancel",
        now,
        reason: event.payload.reason,
        ...(event.payload.requested_by ? { requested_by: event.payload.requested_by } : {}),
      };
    default:
      return null;
  }
}

/** Inputs for one mission's recorded events, in record order. */
export function inputsFromEvents(
  events: readonly SquadEvent[],
  missionId?: string,
): MissionInput[] {
  const out: MissionInput[] = [];
  for (const e of events) {
    if (missionId !== undefined && e.mission_id !== missionId) continue;
    const input = inputFromEvent(e);
    if (input) out.push(input);
  }
  return out;
}

/**
 * True when the record already holds the mission's final event, published by
 * the orchestrator (nothing to resume). A mission_cancelled from anyone else
 * is a request the orchestrator may not have acted on yet.
 */
export function hasFinalEvent(events: readonly SquadEvent[], missionId?: string): boolean {
  return events.some(
    (e) => (missionId === undefined || e.mission_id === missionId) && isFinalMissionEvent(e),
  );
}
