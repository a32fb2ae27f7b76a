import type { SquadEvent } from "../schema/index.ts";

/** Missions remembered as ended, so their queued tasks are dropped (bounded). */
const ENDED_MISSIONS_KEPT = 1000;

/** Why a mission's in-flight tasks must stop, when `e` ends the mission (pure). */
export function missionEndReason(e: SquadEvent): string | null {
  switch (e.type) {
    case "mission_cancelled":
      return `cancelled: ${e.payload.reason}`;
    case "mission_failed":
      return `mission failed: ${e.payload.reason}`;
    case "mission_completed":
      return "mission already completed";
    default:
      return null;
  }
}

/** The missions a replica has seen end, and why (the oldest forgotten past a bound). */
export class EndedMissions {
  private readonly reasons = new Map<string, string>();
  /** Told of each mission's end once (the worker removes its checkouts there). */
  private readonly onEnd: (missionId: string) => void;

  constructor(onEnd: (missionId: string) => void = () => undefined) {
    this.onEnd = onEnd;
  }

  /** Remember `e`'s mission when `e` ends it; answers the reason, or null. */
  note(e: SquadEvent): string | null {
    const reason = missionEndReason(e);
    if (!reason || !e.mission_id) return null;
    const first = !this.reasons.has(e.mission_id);
    this.reasons.set(e.mission_id, reason);
    if (first) this.onEnd(e.mission_id);
    if (this.reasons.size > ENDED_MISSIONS_KEPT) {
      const oldest = this.reasons.keys().next().value;
      if (oldest !== undefined) this.reasons.delete(oldest);
    }
    return reason;
  }

  reason(missionId: string): string | undefined {
    return this.reasons.get(missionId);
  }
}
