/**
 * Approvals: a command that matches an agent's `approval` patterns waits for
 * a person. The worker publishes `approval_requested` on squad.coordination
 * and keeps the task alive (the handler is still running, so the puller's
 * `working()` ticker and the claim renewal go on) until `swarm approve <id>`
 * or `swarm deny <id>` publishes `approval_resolved`, or the agent's
 * `approval_timeout_s` passes: then the worker itself publishes
 * `approval_resolved` with decision `timed_out` and the command is not run.
 * Every decision is an event, so `swarm audit` can show it.
 *
 * Approval ids are `<mission>.<task>.<attempt>.<n>`, n counting the
 * approvals of one attempt from 1; mission and task ids hold no dots.
 */
import { randomUUID } from "node:crypto";
import { approverOf } from "../bus/event-authority.ts";
import type { IdentityRecord } from "../bus/identity.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent, type SquadEvent } from "../schema/index.ts";
import {
  evaluateCommand,
  type CommandGate,
  type CommandPolicy,
  type GateOutcome,
} from "../tools/command-policy.ts";

export type ApprovalDecision =
  | { decision: "approved" | "denied" | "timed_out"; by: string; reason?: string }
  | { decision: "aborted"; by: string; reason: string };

export interface ApprovalRequest {
  approvalId: string;
  missionId: string;
  taskId: string;
  /** The task_assigned event the task came from. */
  correlationId: string | null;
  command: string;
  reason: string;
  timeoutS: number;
  /** The task's signal: aborting it abandons the wait. */
  signal?: AbortSignal;
}

export interface ApprovalBroker {
  /**
   * Feed it the decisions seen on squad.coordination (checked by the event
   * guard first); `signer`: the verified sender, whose identity is then the
   * decision's `by` (not the payload's), null in open mode.
   */
  onEvent(event: SquadEvent, signer?: IdentityRecord | null): void;
  /** This replica waits for a decision on this approval id. */
  waitsFor(approvalId: string): boolean;
  /** Publish the request and wait for a decision, the timeout or the abort. */
  request(req: ApprovalRequest): Promise<ApprovalDecision>;
  /** Approvals being waited for now. */
  pending(): number;
}

export interface ApprovalBrokerOptions {
  agent: string;
  /** `<agent>/<instance>`: the source of the requests and of timeout decisions. */
  worker: string;
  /** Publishes to squad.coordination (the replica scrubs secrets on the way). */
  publish: (event: SquadEvent) => Promise<unknown>;
  log: Logger;
}

export function createApprovalBroker(opts: ApprovalBrokerOptions): ApprovalBroker {
  const waiting = new Map<string, (d: ApprovalDecision) => void>();

  const resolved = (req: ApprovalRequest, decision: "timed_out", by: string) =>
    makeEvent(
      "approval_resolved",
      {
        mission_id: req.missionId,
        task_id: req.taskId,
        source: opts.worker,
        correlation_id: req.correlationId,
      },
      { approval_id: req.approvalId, decision, by },
    );

  return {
    onEvent(e, signer = null) {
      if (e.type !== "approval_resolved") return;
      const wake = waiting.get(e.payload.approval_id);
      if (wake) {
        const { decision, reason } = e.payload;
        wake({ decision, by: approverOf(e, signer), ...(reason ? { reason } : {}) });
      }
    },

    waitsFor: (approvalId) => waiting.has(approvalId),

    async request(req) {
      const log = opts.log.child({ approval_id: req.approvalId });
      let wake!: (d: ApprovalDecision) => void;
      const decided = new Promise<ApprovalDecision>((resolve) => (wake = resolve));
      // Listening before asking: a fast `swarm approve` can't be missed.
      waiting.set(req.approvalId, wake);
      const timer = setTimeout(
        () => wake({ decision: "timed_out", by: opts.worker }),
        Math.round(req.timeoutS * 1000),
      );
      const onAbort = () => {
        const reason: unknown = req.signal?.reason;
        wake({
          decision: "aborted",
          by: opts.worker,
          reason: typeof reason === "string" ? reason : errorMessage(reason),
        });
      };
      if (req.signal?.aborted) onAbort();
      else req.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await opts.publish(
          makeEvent(
            "approval_requested",
            {
              id: randomUUID(),
              mission_id: req.missionId,
              task_id: req.taskId,
              source: opts.worker,
              correlation_id: req.correlationId,
            },
            {
              approval_id: req.approvalId,
              agent: opts.agent,
              worker: opts.worker,
              command: req.command,
              reason: req.reason,
              timeout_s: req.timeoutS,
            },
          ),
        );
        log.warn(
          { timeout_s: req.timeoutS, reason: req.reason },
          `command waits for approval: swarm approve ${req.approvalId} (or swarm deny ${req.approvalId})`,
        );
        const d = await decided;
        // Nobody decided: the worker closes the request itself, so the audit shows how it ended.
        const closeAs =
          d.decision === "aborted"
            ? `${opts.worker} (task stopped: ${d.reason})`
            : d.decision === "timed_out" && d.by === opts.worker
              ? opts.worker
              : null;
        if (closeAs) {
          await opts
            .publish(resolved(req, "timed_out", closeAs))
            .catch((err: unknown) =>
              log.warn({ err: errorMessage(err) }, "approval timeout not published"),
            );
        }
        log.info({ decision: d.decision, by: d.by }, "approval decided");
        return d;
      } finally {
        clearTimeout(timer);
        req.signal?.removeEventListener("abort", onAbort);
        waiting.delete(req.approvalId);
      }
    },

    pending: () => waiting.size,
  };
}

/**
 * The gate of one task attempt: the agent's policy decides, and a command
 * that needs approval waits on the broker under the next approval id.
 */
export function createApprovalGate(opts: {
  policy: CommandPolicy;
  broker: ApprovalBroker;
  missionId: string;
  taskId: string;
  attempt: number;
  correlationId: string | null;
}): CommandGate {
  let n = 0;
  return {
    async admit(command, signal): Promise<GateOutcome> {
      const v = evaluateCommand(opts.policy, command);
      if (v.action === "run") return { run: true };
      if (v.action === "refuse")
        return { run: false, reason: `command refused by policy: ${v.reason}` };
      const id = `${opts.missionId}.${opts.taskId}.${opts.attempt}.${++n}`;
      let d: ApprovalDecision;
      try {
        d = await opts.broker.request({
          approvalId: id,
          missionId: opts.missionId,
          taskId: opts.taskId,
          correlationId: opts.correlationId,
          command,
          reason: v.reason,
          timeoutS: opts.policy.approvalTimeoutS,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        return {
          run: false,
          reason: `command needs approval (${v.reason}) but the request could not be sent: ${errorMessage(err)}`,
          approval: { id, decision: "aborted" },
        };
      }
      switch (d.decision) {
        case "approved":
          return { run: true, approval: { id, by: d.by } };
        case "denied":
          return {
            run: false,
            reason: `approval ${id} was denied by ${d.by}${d.reason ? `: ${d.reason}` : ""} (${v.reason})`,
            approval: { id, decision: "denied" },
          };
        case "timed_out":
          return {
            run: false,
            reason: `no decision on approval ${id} within ${opts.policy.approvalTimeoutS}s, so it counts as denied (${v.reason})`,
            approval: { id, decision: "timed_out" },
          };
        case "aborted":
          return {
            run: false,
            reason: `approval ${id} abandoned: ${d.reason}`,
            approval: { id, decision: "aborted" },
          };
      }
    },
  };
}
