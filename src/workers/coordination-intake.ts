/**
 * What a worker replica takes from squad.coordination: decisions on the
 * approvals it waits for, and mission ends (its in-flight tasks of that
 * mission stop). Each passes the event guard first: a decision only from an
 * operator (a `timed_out` also from this agent's worker), a mission end only
 * from the orchestrator (a cancel request also from an operator). Events
 * this replica does not act on are not checked, so another agent's traffic
 * is never counted as refused here.
 */
import type { EventGuard, ReceivedMessage } from "../bus/event-guard.ts";
import type { SquadEvent } from "../schema/index.ts";
import type { ApprovalBroker } from "./approvals.ts";

export interface CoordinationIntakeDeps {
  guard: EventGuard;
  /** The replica's agent: the agent of every task it waits on. */
  agent: string;
  approvals: ApprovalBroker;
  /** An accepted mission end (mission_completed / failed / cancelled). */
  onMissionEnd: (event: SquadEvent) => void;
}

/** The watch's onEvent for squad.coordination. */
export function createCoordinationIntake(
  deps: CoordinationIntakeDeps,
): (event: SquadEvent, subject: string, msg: ReceivedMessage) => void {
  return (event, _subject, msg) => {
    if (event.type === "approval_resolved") {
      if (!deps.approvals.waitsFor(event.payload.approval_id)) return;
      const a = deps.guard.admit(msg, event, { taskAgent: deps.agent });
      if (a.accept) deps.approvals.onEvent(event, a.signer);
      return;
    }
    if (deps.guard.admit(msg, event).accept) deps.onMissionEnd(event);
  };
}
