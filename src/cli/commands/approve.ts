import type { Command } from "commander";
import {
  approverOf,
  connectBus,
  createPublisher,
  replayEvents,
  type EventGuard,
  type NatsConnection,
} from "../../bus/index.ts";
import { BadInputError } from "../../errors.ts";
import { silentLogger } from "../../log.ts";
import { approvalState } from "../../client/audit.ts";
import { makeEvent, type SquadEvent } from "../../schema/index.ts";
import {
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
  type Resolved,
} from "../options.ts";
import { openCliGuard } from "../cli-guard.ts";

/** `<mission>.<task>.<attempt>.<n>`, as workers number approvals. */
const APPROVAL_ID = /^([A-Za-z0-9_-]{1,80})\.([A-Za-z0-9_-]{1,80})\.(\d+)\.(\d+)$/;

/** The bus with the credentials of the environment (NATS_USER/NATS_PASS, SWARM_NATS_INBOX_PREFIX). */
/** A CLI command's connection, as the role it acts as (approve/deny: operator; audit: watcher). */
export async function connectCliBus(
  common: Resolved,
  name: string,
  role: "operator" | "watcher" = "operator",
): Promise<NatsConnection> {
  return connectBus({ ...(await clientConnectOptions(common, name, { role })), log: silentLogger });
}

/** The mission of an approval id, or a BadInputError saying what an id looks like. */
export function approvalMission(approvalId: string): string {
  const m = APPROVAL_ID.exec(approvalId);
  if (!m) {
    throw new BadInputError(
      `${JSON.stringify(approvalId)} is not an approval id: they look like <mission>.<task>.<attempt>.<n> ` +
        "(see the approval_requested event in `swarm watch`, or `swarm audit <mission>`)",
    );
  }
  return m[1]!;
}

/**
 * Publish a person's decision on a pending approval: `approval_resolved`
 * with `by: "cli"` on squad.coordination, where the waiting worker sees it,
 * signed by the operator identity (which is what the worker and the audit
 * name as the approver). Refuses (exit 2) an id that was never requested or
 * is decided already; the record is read through the guard, so a forged
 * request or decision neither opens nor closes an approval.
 */
export async function decideApproval(
  nc: NatsConnection,
  approvalId: string,
  decision: "approved" | "denied",
  guard?: EventGuard,
  reason?: string,
): Promise<{ command: string; worker: string }> {
  const missionId = approvalMission(approvalId);
  const events: SquadEvent[] = [];
  for await (const { event, message } of replayEvents(nc, { missionId })) {
    const a = guard ? guard.admit(message, event) : { accept: true as const, signer: null };
    if (!a.accept) continue;
    // The approver the record names is the signer's identity, not the payload's word.
    events.push(
      event.type === "approval_resolved" && a.signer
        ? { ...event, payload: { ...event.payload, by: approverOf(event, a.signer) } }
        : event,
    );
  }
  const { request, resolution } = approvalState(events, approvalId);
  if (!request) {
    const pending = events
      .filter((e) => e.type === "approval_requested")
      .map((e) => (e.type === "approval_requested" ? e.payload.approval_id : ""))
      .filter((id) => !approvalState(events, id).resolution);
    throw new BadInputError(
      `no approval ${approvalId} was requested in mission ${missionId}` +
        (pending.length ? ` (pending: ${[...new Set(pending)].join(", ")})` : " (none is pending)"),
    );
  }
  if (resolution) {
    throw new BadInputError(
      `approval ${approvalId} was already decided: ${resolution.payload.decision} by ${resolution.payload.by}`,
    );
  }
  await createPublisher(nc, { signer: guard?.signer ?? null }).publish(
    makeEvent(
      "approval_resolved",
      {
        mission_id: missionId,
        task_id: request.task_id,
        source: "cli",
        correlation_id: request.id,
      },
      { approval_id: approvalId, decision, by: "cli", ...(reason ? { reason } : {}) },
    ),
  );
  return { command: request.payload.command, worker: request.payload.worker };
}

/** A decision's `--reason`: trimmed, at most 2,000 characters (the event's limit), or a BadInputError. */
export function decisionReason(raw: string | undefined | null): string | undefined {
  const reason = raw?.trim();
  if (!reason) return undefined;
  if (reason.length > 2000) {
    throw new BadInputError(
      `--reason is ${reason.length} characters long; an approval's reason holds at most 2000`,
    );
  }
  return reason;
}

/** approve and deny are the same command with another decision. */
export function registerDecisionCommand(
  program: Command,
  name: "approve" | "deny",
  decision: "approved" | "denied",
): void {
  withCommonOptions(
    program
      .command(name)
      .description(
        decision === "approved"
          ? "let a command that waits for approval run"
          : "refuse a command that waits for approval (the task sees why)",
      )
      .argument(
        "<approval_id>",
        "the id of the approval_requested event: <mission>.<task>.<attempt>.<n>",
      ),
  )
    .option("--json", "print the decision as one JSON object")
    .option("--reason <text>", "why (recorded in the event and the audit; a denied task sees it)")
    .addHelpText(
      "after",
      `\nExamples:\n  $ swarm ${name} m-20240101-abcd.t3.1.1\n  $ swarm ${name} m-20240101-abcd.t3.1.1 --reason "${
        decision === "approved" ? "checked the target" : "not on a Friday"
      }"\n  $ swarm ${name} m-20240101-abcd.t3.1.1 --json`,
    )
    .action(
      async (approvalId: string, flags: CommonFlags & { json?: boolean; reason?: string }) => {
        const common = resolveCommon(flags);
        approvalMission(approvalId.trim());
        const reason = decisionReason(flags.reason);
        const nc = await connectCliBus(common, `swarm-${name}`);
        try {
          const id = approvalId.trim();
          const guard = await openCliGuard(nc, { publishes: true });
          const { command, worker } = await decideApproval(nc, id, decision, guard, reason);
          process.stdout.write(
            flags.json
              ? `${JSON.stringify({ approval_id: id, decision, worker, command, ...(reason ? { reason } : {}) })}\n`
              : `${decision} ${id} (${worker}): ${command}\n`,
          );
        } finally {
          await nc.drain();
        }
      },
    );
}

export function registerApproveCommand(program: Command): void {
  registerDecisionCommand(program, "approve", "approved");
}
