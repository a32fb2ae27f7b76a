/**
 * What a person can do from the dashboard. The CLI gives the implementation
 * (`swarm dashboard` wires the code of `swarm approve`, `deny` and `cancel`,
 * with the operator's credentials and event signing), so an action from the
 * page is the same publish, permission and audit record as one from a
 * terminal. A BadInputError from an action (an approval already decided, a
 * finished mission) is shown to the person as it is.
 */
import { z } from "zod";

export interface DashboardActions {
  decide(
    approvalId: string,
    decision: "approved" | "denied",
    reason: string | null,
  ): Promise<{ approval_id: string; decision: string; command: string; worker: string }>;
  cancel(missionId: string, reason: string): Promise<{ mission_id: string; event_id: string }>;
}

/** Body of `POST /api/approvals/<id>`. */
export const DecisionBody = z.object({
  decision: z.enum(["approved", "denied"]),
  reason: z.string().max(2000).optional(),
});

/** Body of `POST /api/missions/<id>/cancel`. */
export const CancelBody = z.object({
  reason: z.string().min(1).max(2000).optional(),
});
