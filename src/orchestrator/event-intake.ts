/**
 * The orchestrator's check of every event it reads from SQUAD_EVENTS (the
 * replay at start and the live feed) before the book or a mission's state
 * machine sees it: the event guard (signature and who may send it) with what
 * only the orchestrator knows, the task's agent from the mission's plan and,
 * for a worker's result, which replica holds the attempt's claim.
 *
 * Open mode (no registry): everything passes, as before.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { AuthorityContext } from "../bus/event-authority.ts";
import type { EventGuard, ReceivedMessage } from "../bus/event-guard.ts";
import { claimKey, type LeaseStore } from "../bus/leases.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { EventOf, SquadEvent } from "../schema/index.ts";
import type { MissionBook } from "./mission-book.ts";

export interface EventIntakeDeps {
  guard: EventGuard;
  book: MissionBook;
  /** The workers' claims (squad_claims). */
  claims: Pick<LeaseStore, "inspect">;
  log: Logger;
}

/** Event types about one task of a mission, sent by the worker of the task's agent. */
const TASK_EVENTS = new Set<string>([
  "task_started",
  "task_progress",
  "task_model_called",
  "task_completed",
  "task_failed",
  "approval_requested",
  "approval_resolved",
]);

/** Tries to read a claim before the result is refused for want of it. */
const CLAIM_READS = 3;

export interface EventIntake {
  /** In stream order; false: refused (logged and counted by the guard). */
  admit(event: SquadEvent, msg: ReceivedMessage): Promise<boolean>;
}

export function createEventIntake(deps: EventIntakeDeps): EventIntake {
  return {
    async admit(event, msg) {
      if (deps.guard.mode() === "open") return true;
      const context = await contextFor(event, deps);
      return deps.guard.admit(msg, event, context).accept;
    },
  };
}

async function contextFor(event: SquadEvent, deps: EventIntakeDeps): Promise<AuthorityContext> {
  if (!TASK_EVENTS.has(event.type) || !event.mission_id) return {};
  const plans = deps.book
    .events(event.mission_id)
    .filter((e): e is EventOf<"mission_planned"> => e.type === "mission_planned");
  // A mission this orchestrator has no plan of (finished, not planned yet): nothing applies
  // the event, so only the signer's role is checked.
  if (plans.length === 0) return {};
  const taskAgent = event.task_id ? taskAgentIn(plans, event.task_id) : null;
  const context: AuthorityContext = { taskAgent };
  if (
    taskAgent &&
    event.task_id &&
    (event.type === "task_completed" || event.type === "task_failed") &&
    event.source !== "orchestrator"
  ) {
    const key = claimKey(taskAgent, event.mission_id, event.task_id, event.payload.result.attempt);
    context.claimHolder = await claimHolder(key, deps);
  }
  return context;
}

/** The task's agent in the latest plan that has the task (a replan may move it). */
export function taskAgentIn(
  plans: readonly EventOf<"mission_planned">[],
  taskId: string,
): string | null {
  const byRevision = [...plans].sort((a, b) => b.payload.revision - a.payload.revision);
  for (const p of byRevision) {
    for (const w of p.payload.plan.waves) {
      const t = w.tasks.find((x) => x.id === taskId);
      if (t) return t.agent;
    }
  }
  return null;
}

/** The claim's owner, or null when nobody claimed it; a claim that can't be read is "(unreadable)". */
async function claimHolder(key: string, deps: EventIntakeDeps): Promise<string | null> {
  for (let i = 1; ; i++) {
    try {
      return (await deps.claims.inspect(key))?.owner ?? null;
    } catch (err) {
      if (i >= CLAIM_READS) {
        deps.log.warn({ key, err: errorMessage(err) }, "claim not readable; the result is refused");
        // No owner is named this way: the authority refuses, naming the key's state.
        return "(unreadable claim)";
      }
      await sleep(200 * i);
    }
  }
}
