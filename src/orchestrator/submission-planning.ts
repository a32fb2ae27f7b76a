import type { JsMsg } from "@nats-io/jetstream";
import { backoffDelay } from "../backoff.ts";
import type { LeaseStore, Publisher } from "../bus/index.ts";
import { BadInputError, errorMessage } from "../errors.ts";
import { ModelUnavailableError } from "../llm/errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent, type EventOf, type SquadEvent } from "../schema/index.ts";
import type { Roster } from "../workers/roster.ts";
import { parseBrief, type Brief } from "./brief.ts";
import { planFromBrief, type PlanOutcome } from "./explicit-plan.ts";
import type { MissionBook } from "./mission-book.ts";
import type { MissionLauncher } from "./mission-launch.ts";
import type { MissionInput } from "./mission-machine.ts";
import { callPlanner } from "./planner-call.ts";

/** Deliveries of one submission before a planner outage fails the mission. */
const MAX_PLANNING_DELIVERIES = 5;

/** What planning needs of the submission's JetStream message. */
export type SubmissionMessage = Pick<JsMsg, "ack" | "nak" | "info">;

export interface SubmissionPlanningOptions {
  book: MissionBook;
  launcher: MissionLauncher;
  leases: LeaseStore;
  publisher: Publisher;
  roster: Roster;
  /** Owner name in the mission leases. */
  instance: string;
  leaseMs: number;
  /** SWARM_PLANNER_MODEL; without it only briefs with an explicit plan can run. */
  plannerModel?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Aborts planner calls when the orchestrator stops. */
  signal: AbortSignal;
  isStopping: () => boolean;
}

/**
 * Plan one submitted mission whose lease we hold: parse the brief, take its
 * explicit plan or ask the planner, record mission_planned and start the
 * mission (MissionLauncher.startNew), then ack the submission. A brief that
 * can't run ends the mission with a report; a planner outage hands the
 * submission back for a later delivery.
 */
export function createSubmissionPlanning(opts: SubmissionPlanningOptions) {
  const { book, launcher, leases, publisher, instance, leaseMs } = opts;
  const agentNames = opts.roster.agents.map((a) => a.name);

  return async function planSubmission(
    event: EventOf<"mission_submitted">,
    m: SubmissionMessage,
    mlog: Logger,
  ): Promise<void> {
    const missionId = event.mission_id!;
    const submittedAt = Date.parse(event.timestamp);
    let planner: string | null = null;
    const handBack = async (delayMs: number) => {
      await leases.release(missionId, instance);
      m.nak(delayMs);
    };
    /** Ends the mission through the machine, so it gets a report like any other. */
    const endBeforeStart = async (title: string, input: MissionInput) => {
      const runner = await launcher.endUnplanned(
        missionId,
        submittedAt,
        { title, sourcePath: event.payload.source_path, planner, plan: null, brief: null },
        input,
      );
      // Unpublished final event: the runner repeats it on ticks; the redelivery finds it here.
      if (runner.finished) m.ack();
      else m.nak(5000);
    };
    const fail = (title: string, error: string) => {
      mlog.warn({ error }, "mission failed before it started");
      return endBeforeStart(title, { type: "planned", now: Date.now(), error });
    };

    // Cancelled before it was planned (e.g. while no orchestrator ran): no planner call.
    const cancel = book.events(missionId).find(is("mission_cancelled"));
    if (cancel) {
      mlog.info({ reason: cancel.payload.reason }, "mission cancelled before it was planned");
      return endBeforeStart(missionId, {
        type: "cancel",
        now: Date.now(),
        reason: cancel.payload.reason,
        ...(cancel.payload.requested_by ? { requested_by: cancel.payload.requested_by } : {}),
      });
    }

    let brief: Brief;
    try {
      brief = parseBrief(event.payload.brief, {
        sourcePath: event.payload.source_path,
        knownAgents: agentNames,
      });
    } catch (err) {
      if (err instanceof BadInputError) return fail(missionId, err.message);
      throw err;
    }

    let outcome: PlanOutcome;
    if (brief.plan) {
      outcome = planFromBrief(brief, { agents: agentNames });
    } else if (!opts.plannerModel) {
      return fail(
        brief.title,
        "the brief has no explicit plan and no planner model is configured (set SWARM_PLANNER_MODEL)",
      );
    } else {
      planner = opts.plannerModel;
      mlog.info({ planner }, "planning");
      try {
        outcome = await callPlanner(
          planner,
          { brief, agents: opts.roster.agents, signal: opts.signal, missionId },
          opts.env,
        );
      } catch (err) {
        if (opts.isStopping()) {
          mlog.info("orchestrator stopping; submission handed back");
          return handBack(0);
        }
        if (
          err instanceof ModelUnavailableError &&
          m.info.deliveryCount < MAX_PLANNING_DELIVERIES
        ) {
          // The client has retried already; then up to 1 s, 2 s, 4 s... between deliveries.
          const delay = backoffDelay(m.info.deliveryCount, 1000, 30_000);
          mlog.warn({ err: err.message, retry_in_ms: delay }, "planner unavailable; handed back");
          return handBack(delay);
        }
        return fail(brief.title, errorMessage(err));
      }
      mlog.info(
        { attempts: outcome.attempts, usage: outcome.usage, ok: outcome.ok },
        "planner answered",
      );
    }
    if (!outcome.ok) return fail(brief.title, outcome.problems.join("; "));

    // Lost while planning (we could not renew): whoever holds it now decides.
    if (!(await leases.renew(missionId, instance, leaseMs))) {
      mlog.warn("mission lease lost while planning; submission handed back");
      m.nak(1000);
      return;
    }
    const plannedEvent = makeEvent(
      "mission_planned",
      { id: `${missionId}.planned.0`, mission_id: missionId, source: "orchestrator" },
      {
        title: brief.title,
        plan: outcome.plan,
        planner,
        revision: 0,
        budget: brief.budget,
        submitted_at: event.timestamp,
        submitted_by: event.source,
        source_path: event.payload.source_path,
        // The mission branch starts here; resume and every replica read it from this event.
        ...(event.payload.workspace ? { workspace: event.payload.workspace } : {}),
      },
    );
    // Record before acting: a crash after this publish resumes from it.
    await publisher.publish(plannedEvent);
    book.add(plannedEvent);
    launcher.startNew(missionId, {
      title: brief.title,
      sourcePath: brief.sourcePath,
      planner,
      plan: outcome.plan,
      brief: { body: brief.body, agents: brief.agents },
    });
    m.ack();
    mlog.info(
      { title: brief.title, tasks: outcome.plan.waves.reduce((n, w) => n + w.tasks.length, 0) },
      "mission planned",
    );
  };
}

export type SubmissionPlanner = ReturnType<typeof createSubmissionPlanning>;

function is<T extends SquadEvent["type"]>(type: T) {
  return (e: SquadEvent): e is EventOf<T> => e.type === type;
}
