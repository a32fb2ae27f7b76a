/**
 * The audit trail of a mission, rebuilt from its events in SQUAD_EVENTS
 * (pure): who ran what, where, when, with which exit code, and who approved
 * it. One row per step (a tool call or a `run` step, from `task_progress`),
 * per verify command (from the result), and per approval decision.
 */
import { approverOf } from "../bus/event-authority.ts";
import type { Admission } from "../bus/event-guard.ts";
import type { EventOf, SquadEvent, Step } from "../schema/index.ts";

export type AuditDecision = "approved" | "denied" | "timed_out" | "pending";

export interface AuditRow {
  kind: "step" | "verify" | "approval";
  /** When the event was published (a step: when it ended). */
  timestamp: string;
  mission_id: string;
  task_id: string | null;
  attempt: number | null;
  /** `<agent>/<instance>` that ran it (or asked for the approval). */
  worker: string | null;
  /** The tool (`run_shell`, `write_file`...), `verify`, or `approval`. */
  tool: string;
  /** The shell command, when there is one. */
  command: string | null;
  /** The tool's arguments as recorded (long strings cut). */
  args: Record<string, unknown>;
  /** null: the command did not run (refused, not approved, killed). */
  exit_code: number | null;
  ok: boolean | null;
  duration_ms: number | null;
  approval_id: string | null;
  decision: AuditDecision | null;
  /**
   * Who decided: with signatures on, the signer's identity (`operator`, or the
   * worker for a timeout), never the payload's word; without, the payload's `by`.
   */
  by: string | null;
  /** Set on a decision the event guard refused (forged, unsigned): why. It decided nothing. */
  refused?: string;
  /** Why the approval was asked for. */
  reason: string | null;
  /** Why the person decided so, when they said (`swarm deny --reason`). */
  decision_reason?: string;
}

type Request = EventOf<"approval_requested">;
type Resolution = EventOf<"approval_resolved">;

/** Attempt number inside an approval id `<mission>.<task>.<attempt>.<n>`, or null. */
export function approvalAttempt(approvalId: string): number | null {
  const m = /^[^.]+\.[^.]+\.(\d+)\.\d+$/.exec(approvalId);
  return m ? Number(m[1]) : null;
}

/**
 * The rows of one mission, in the order their events were stored.
 * `admissions[i]`: the event guard's verdict on `events[i]` (absent: open
 * mode, taken as they are). A refused decision is a row marked `refused`;
 * any other refused event is left out.
 */
export function buildAudit(
  events: readonly SquadEvent[],
  missionId: string,
  admissions?: readonly Admission[],
): AuditRow[] {
  const verdict = new Map<SquadEvent, Admission>();
  admissions?.forEach((a, i) => verdict.set(events[i]!, a));
  const mine = events.filter(
    (e) =>
      e.mission_id === missionId &&
      (verdict.get(e)?.accept !== false || e.type === "approval_resolved"),
  );
  const progressSeen = new Set<string>();
  for (const e of mine) {
    if (e.type === "task_progress") {
      progressSeen.add(`${e.task_id}#${e.payload.attempt}#${e.payload.worker}`);
    }
  }
  // Both as of the event being read: a step is linked to the decision that let it run (or not).
  const requests = new Map<string, Request>();
  const decisions = new Map<string, Resolution>();
  /** Requested and not decided yet. */
  const open = new Map<string, Request>();

  const stepRow = (
    step: Step,
    at: string,
    taskId: string | null,
    attempt: number,
    worker: string,
  ): AuditRow => {
    const approvalId = typeof step.args.approval_id === "string" ? step.args.approval_id : null;
    const decision = approvalId ? decisions.get(approvalId) : undefined;
    return {
      kind: "step",
      timestamp: at,
      mission_id: missionId,
      task_id: taskId,
      attempt,
      worker,
      tool: step.tool,
      command: typeof step.args.command === "string" ? step.args.command : null,
      args: step.args,
      exit_code: step.exit_code ?? null,
      ok: step.ok,
      duration_ms: step.duration_ms,
      approval_id: approvalId,
      decision: approvalId ? (decision?.payload.decision ?? "pending") : null,
      by: decision?.payload.by ?? null,
      reason: approvalId ? (requests.get(approvalId)?.payload.reason ?? null) : null,
    };
  };

  const rows: AuditRow[] = [];
  for (const e of mine) {
    switch (e.type) {
      case "approval_requested":
        requests.set(e.payload.approval_id, e);
        decisions.delete(e.payload.approval_id);
        open.set(e.payload.approval_id, e);
        break;
      case "task_progress":
        rows.push(
          stepRow(e.payload.step, e.timestamp, e.task_id, e.payload.attempt, e.payload.worker),
        );
        break;
      case "task_completed":
      case "task_failed": {
        const r = e.payload.result;
        // Progress events can be lost (published fire-and-forget); the result keeps every step.
        if (!progressSeen.has(`${e.task_id}#${r.attempt}#${r.worker}`)) {
          for (const step of r.steps)
            rows.push(stepRow(step, e.timestamp, e.task_id, r.attempt, r.worker));
        }
        for (const check of r.verification) {
          rows.push({
            kind: "verify",
            timestamp: e.timestamp,
            mission_id: missionId,
            task_id: e.task_id,
            attempt: r.attempt,
            worker: r.worker,
            tool: "verify",
            command: check.command,
            args: { command: check.command },
            exit_code: check.exit_code,
            ok: check.ok,
            duration_ms: null,
            approval_id: null,
            decision: null,
            by: null,
            reason: null,
          });
        }
        break;
      }
      case "approval_resolved": {
        const id = e.payload.approval_id;
        const req = requests.get(id);
        const v = verdict.get(e);
        if (v?.accept === false) {
          rows.push({ ...approvalRow(e, req, missionId), by: e.payload.by, refused: v.reason });
          break;
        }
        // The record keeps who decided as the identity says.
        const by = v?.signer ? approverOf(e, v.signer) : e.payload.by;
        decisions.set(id, { ...e, payload: { ...e.payload, by } });
        open.delete(id);
        rows.push({ ...approvalRow(e, req, missionId), by });
        break;
      }
      default:
        break;
    }
  }
  // Still waiting: a row each, so the audit shows what a person is asked to decide.
  for (const [id, req] of open) {
    rows.push({
      kind: "approval",
      timestamp: req.timestamp,
      mission_id: missionId,
      task_id: req.task_id,
      attempt: approvalAttempt(id),
      worker: req.payload.worker,
      tool: "approval",
      command: req.payload.command,
      args: { command: req.payload.command },
      exit_code: null,
      ok: null,
      duration_ms: null,
      approval_id: id,
      decision: "pending",
      by: null,
      reason: req.payload.reason,
    });
  }
  return rows;
}

/** The row of one decision (`by` as recorded; the caller sets the authenticated one). */
function approvalRow(e: Resolution, req: Request | undefined, missionId: string): AuditRow {
  const id = e.payload.approval_id;
  return {
    kind: "approval",
    timestamp: e.timestamp,
    mission_id: missionId,
    task_id: e.task_id ?? req?.task_id ?? null,
    attempt: approvalAttempt(id),
    worker: req?.payload.worker ?? null,
    tool: "approval",
    command: req?.payload.command ?? null,
    args: req ? { command: req.payload.command } : {},
    exit_code: null,
    ok: e.payload.decision === "approved",
    duration_ms: req ? Math.max(0, Date.parse(e.timestamp) - Date.parse(req.timestamp)) : null,
    approval_id: id,
    decision: e.payload.decision,
    by: e.payload.by,
    reason: req?.payload.reason ?? null,
    ...(e.payload.reason ? { decision_reason: e.payload.reason } : {}),
  };
}

/** The state of one approval id among a mission's events: for `swarm approve` / `swarm deny`. */
export function approvalState(
  events: readonly SquadEvent[],
  approvalId: string,
): { request: Request | null; resolution: Resolution | null } {
  let request: Request | null = null;
  let resolution: Resolution | null = null;
  for (const e of events) {
    if (e.type === "approval_requested" && e.payload.approval_id === approvalId) {
      // A re-request (the task was redelivered) opens the approval again.
      request = e;
      resolution = null;
    }
    if (e.type === "approval_resolved" && e.payload.approval_id === approvalId && request) {
      resolution ??= e;
    }
  }
  return { request, resolution };
}
