/**
 * Who may send which event (pure): the signer's identity (event-signing.ts,
 * looked up in the registry) against the event's type, subject, envelope and
 * what the receiver knows of the task (its agent, its attempt's claim).
 *
 * | event                                                          | from                                                              |
 * |----------------------------------------------------------------|-------------------------------------------------------------------|
 * | mission_planned/completed/failed, wave_*, task_assigned, other | orchestrator                                                      |
 * | mission_submitted, mission_cancelled                           | operator or orchestrator                                          |
 * | task_started, task_progress, task_model_called, approval_requested | worker of the task's agent                                    |
 * | task_completed, task_failed                                    | worker of the task's agent, the replica holding the attempt's claim (and the orchestrator's task_failed for a timeout) |
 * | approval_resolved                                              | operator; a `timed_out` also from the worker of the task's agent  |
 * | agent_online/heartbeat/offline                                 | worker of the payload's agent                                     |
 *
 * The envelope's `source` is bound to the identity as well: `orchestrator`
 * only from the orchestrator, `<agent>/<instance>` only from that agent's
 * worker, and an operator names itself without a `/` (`cli`). The subject
 * must be the contract's subject for the event (a task on its agent's
 * subject, a heartbeat on its own). A watcher sends nothing.
 */
import type { EventType, SquadEvent } from "../schema/index.ts";
import type { IdentityRecord } from "./identity.ts";
import { subjectFor } from "./publisher.ts";

/** What the receiver knows beyond the event; a field left out is not checked. */
export interface AuthorityContext {
  /** The task's agent, from the receiver's own record (the plan, the task it runs); null: no such task. */
  taskAgent?: string | null;
  /** Instance that holds the attempt's claim (squad_claims); null: nobody claimed it. */
  claimHolder?: string | null;
}

export interface AuthorityInput {
  event: SquadEvent;
  subject: string;
  /** The verified signer, or null (unsigned, unknown key, bad signature: the guard says which). */
  signer: IdentityRecord | null;
  context?: AuthorityContext;
}

export type AuthorityVerdict = { accept: true } | { accept: false; reason: string };

type Rule =
  "orchestrator" | "operator" | "task_worker" | "task_result" | "approval_decision" | "status";

/** The rule of each event type; a type added later is orchestrator-only until it gets its own. */
const RULES: Partial<Record<EventType, Rule>> = {
  mission_submitted: "operator",
  mission_cancelled: "operator",
  mission_planned: "orchestrator",
  mission_completed: "orchestrator",
  mission_failed: "orchestrator",
  wave_started: "orchestrator",
  wave_completed: "orchestrator",
  task_assigned: "orchestrator",
  task_merged: "orchestrator",
  task_conflicted: "orchestrator",
  task_started: "task_worker",
  task_progress: "task_worker",
  task_model_called: "task_worker",
  approval_requested: "task_worker",
  task_completed: "task_result",
  task_failed: "task_result",
  approval_resolved: "approval_decision",
  agent_online: "status",
  agent_heartbeat: "status",
  agent_offline: "status",
};

const ACCEPT: AuthorityVerdict = { accept: true };
const refuse = (reason: string): AuthorityVerdict => ({ accept: false, reason });

/** Decide whether `signer` may send `event` on `subject` (pure). */
export function authorize(input: AuthorityInput): AuthorityVerdict {
  const { event, subject, signer } = input;
  const ctx = input.context ?? {};
  if (!signer) return refuse(`${event.type} is not signed by a known identity`);
  const who = `${signer.name} (${signer.role})`;

  let expected: string;
  try {
    expected = subjectFor(event);
  } catch (err) {
    return refuse(`${event.type} has no valid subject: ${(err as Error).message}`);
  }
  if (subject !== expected) return refuse(`${event.type} on ${subject}, not on ${expected}`);

  const source = sourceCheck(event.source, signer);
  if (source)
    return refuse(`${who} may not send as source ${JSON.stringify(event.source)}: ${source}`);

  const rule = RULES[event.type] ?? "orchestrator";
  switch (rule) {
    case "orchestrator":
      return signer.role === "orchestrator"
        ? ACCEPT
        : refuse(`${event.type} only comes from the orchestrator, not from ${who}`);

    case "operator":
      return signer.role === "operator" || signer.role === "orchestrator"
        ? ACCEPT
        : refuse(`${event.type} only comes from an operator or the orchestrator, not from ${who}`);

    case "status": {
      const agent = (event.payload as { agent: string }).agent;
      if (signer.role !== "worker" || signer.agent !== agent) {
        return refuse(
          `${event.type} of agent ${agent} only comes from worker-${agent}, not from ${who}`,
        );
      }
      const instance = (event.payload as { instance: string }).instance;
      return event.source === `${agent}/${instance}`
        ? ACCEPT
        : refuse(`${event.type} of ${agent}/${instance} with source ${event.source}`);
    }

    case "approval_decision": {
      if (event.type !== "approval_resolved") return refuse(`unexpected ${event.type}`);
      if (signer.role === "operator") return ACCEPT;
      if (signer.role === "worker" && event.payload.decision === "timed_out") {
        return taskAgentCheck(event, signer, ctx) ?? ACCEPT;
      }
      return refuse(
        `approval_resolved (${event.payload.decision}) only comes from an operator` +
          (signer.role === "worker"
            ? " (a worker may only close its own request as timed_out)"
            : "") +
          `, not from ${who}`,
      );
    }

    case "task_worker": {
      if (signer.role !== "worker") {
        return refuse(
          `${event.type} only comes from the worker of the task's agent, not from ${who}`,
        );
      }
      const bad = taskAgentCheck(event, signer, ctx);
      if (bad) return bad;
      if (event.type === "approval_requested") {
        if (event.payload.agent !== signer.agent || event.payload.worker !== event.source) {
          return refuse(
            `approval_requested names agent ${event.payload.agent} and worker ${event.payload.worker}, signed by ${who} as ${event.source}`,
          );
        }
      } else if (
        event.type === "task_started" ||
        event.type === "task_progress" ||
        event.type === "task_model_called"
      ) {
        if (event.payload.worker !== event.source) {
          return refuse(
            `${event.type} names worker ${event.payload.worker} but comes from ${event.source}`,
          );
        }
      }
      return ACCEPT;
    }

    case "task_result": {
      if (event.type !== "task_completed" && event.type !== "task_failed") {
        return refuse(`unexpected ${event.type}`);
      }
      const result = event.payload.result;
      if (signer.role === "orchestrator") {
        // The orchestrator fails an attempt that timed out; it never reports a success.
        return event.type === "task_failed" && result.worker === "orchestrator"
          ? ACCEPT
          : refuse(`the orchestrator only reports an attempt it timed out (task_failed)`);
      }
      if (signer.role !== "worker") {
        return refuse(
          `${event.type} only comes from the worker of the task's agent, not from ${who}`,
        );
      }
      const bad = taskAgentCheck(event, signer, ctx);
      if (bad) return bad;
      if (result.worker !== event.source) {
        return refuse(
          `${event.type}'s result names worker ${result.worker} but comes from ${event.source}`,
        );
      }
      if (ctx.claimHolder === undefined) return ACCEPT;
      const instance = event.source.slice(event.source.indexOf("/") + 1);
      if (ctx.claimHolder === null) {
        return refuse(`${event.type} for attempt ${result.attempt} that no replica claimed`);
      }
      return ctx.claimHolder === instance
        ? ACCEPT
        : refuse(
            `${event.type} from ${event.source}, but the claim on attempt ${result.attempt} is held by ${ctx.claimHolder}`,
          );
    }
  }
}

/** Why `source` does not fit the signer, or null when it does. */
function sourceCheck(source: string, signer: IdentityRecord): string | null {
  switch (signer.role) {
    case "orchestrator":
      return source === "orchestrator" ? null : `the orchestrator sends as "orchestrator"`;
    case "worker":
      return source.startsWith(`${signer.agent}/`) && source.length > signer.agent!.length + 1
        ? null
        : `worker-${signer.agent} sends as "${signer.agent}/<instance>"`;
    case "operator":
      return source !== "orchestrator" && !source.includes("/")
        ? null
        : `an operator names neither the orchestrator nor a worker`;
    case "watcher":
      return "a watcher sends nothing";
  }
}

/** A worker's event is about a task of its own agent (when the receiver knows the task). */
function taskAgentCheck(
  event: SquadEvent,
  signer: IdentityRecord,
  ctx: AuthorityContext,
): AuthorityVerdict | null {
  if (ctx.taskAgent === undefined) return null;
  if (ctx.taskAgent === null) {
    return refuse(
      `${event.type} for task ${event.task_id ?? "(none)"}, which the receiver does not know`,
    );
  }
  return ctx.taskAgent === signer.agent
    ? null
    : refuse(
        `${event.type} for task ${event.task_id ?? "(none)"} of agent ${ctx.taskAgent}, signed by worker-${signer.agent}`,
      );
}

/**
 * Who decided an approval, as a receiver reports it: the signer's identity
 * (an operator's name; a worker closing its own request: its bound source),
 * never the payload's `by`; in open mode (no signer) the payload's word.
 */
export function approverOf(
  event: SquadEvent & { type: "approval_resolved" },
  signer: IdentityRecord | null,
): string {
  if (!signer) return event.payload.by;
  return signer.role === "worker" ? event.source : signer.name;
}
