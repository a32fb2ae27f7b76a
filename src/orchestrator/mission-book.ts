import { isProgressType, type EventOf, type SquadEvent } from "../schema/index.ts";
import { hasFinalEvent } from "./mission-history.ts";

/**
 * What one orchestrator knows of every unfinished mission, read from
 * SQUAD_EVENTS (the replay at start, then the live feed): the events a
 * mission runner is rebuilt from when this orchestrator takes the mission
 * over, at start or later when another owner's lease lapses. Keeping them
 * here means a takeover needs no second read of the stream, so no event can
 * fall between a read and the feed.
 *
 * A mission leaves the book at its final event. Progress events (steps, model
 * calls) are not kept: neither the state machine nor the report needs them.
 */
export class MissionBook {
  private readonly open = new Map<string, { events: SquadEvent[]; ids: Set<string> }>();
  private readonly closed = new Set<string>();

  /** Record one event (in stream order); duplicates by envelope id are dropped. */
  add(event: SquadEvent): void {
    const id = event.mission_id;
    if (!id || this.closed.has(id) || isProgressType(event.type)) return;
    if (hasFinalEvent([event])) {
      this.open.delete(id);
      this.closed.add(id);
      return;
    }
    let entry = this.open.get(id);
    if (!entry) this.open.set(id, (entry = { events: [], ids: new Set() }));
    if (entry.ids.has(event.id)) return;
    entry.ids.add(event.id);
    entry.events.push(event);
  }

  /** The orchestrator's final event for this mission has been seen. */
  isFinished(missionId: string): boolean {
    return this.closed.has(missionId);
  }

  /** The mission's recorded events, in stream order (empty when unknown or finished). */
  events(missionId: string): readonly SquadEvent[] {
    return this.open.get(missionId)?.events ?? [];
  }

  /** The mission's first plan (revision 0): a mission without one is still being planned. */
  firstPlan(missionId: string): EventOf<"mission_planned"> | undefined {
    return this.events(missionId).find(
      (e): e is EventOf<"mission_planned"> =>
        e.type === "mission_planned" && e.payload.revision === 0,
    );
  }

  /** Unfinished missions with a plan: the ones a runner can be rebuilt for. */
  resumable(): string[] {
    return [...this.open.keys()].filter((id) => this.firstPlan(id) !== undefined);
  }
}
