import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  followEvents,
  MISSIONS_DURABLE,
  replayEvents,
  type EventFeed,
  type EventGuard,
  type LeaseStore,
  type Publisher,
} from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { isProgressType, PROGRESS_TYPES, STREAMS } from "../schema/index.ts";
import type { Roster } from "../workers/roster.ts";
import { createEventIntake } from "./event-intake.ts";
import { startForeignTaskSweeper } from "./foreign-tasks.ts";
import { startMergeQueue } from "./merge-link.ts";
import { createMissionAdoption } from "./mission-adoption.ts";
import { MissionBook } from "./mission-book.ts";
import { inputFromEvent } from "./mission-history.ts";
import { createMissionLauncher } from "./mission-launch.ts";
import type { MissionRunner, MissionRunnerDeps } from "./mission-runner.ts";
import { startMissionTimers } from "./mission-timers.ts";
import { openOrchestratorBus } from "./orchestrator-bus.ts";
import { createReplanner } from "./replanner.ts";
import { runSubmissionIntake } from "./submission-intake.ts";
import { createSubmissionPlanning } from "./submission-planning.ts";

export interface OrchestratorOptions {
  nc: NatsConnection;
  log: Logger;
  workspaceRoot: string;
  roster: Roster;
  /** SWARM_PLANNER_MODEL; without it only briefs with an explicit plan can run. */
  plannerModel?: string;
  /** Owner name in the mission leases; unique per process. */
  instance: string;
  tickMs?: number;
  /** How long a mission lease lasts without renewal: how soon a crashed orchestrator's missions are taken over. */
  leaseMs?: number;
  startTimeoutS?: number;
  maxReplans?: number;
  /** How often tasks for agents nobody serves are moved to the DLQ. Default 10 s. */
  foreignSweepMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Replicas of the streams and KV buckets (3 on a 3-node cluster); existing
   * ones are brought to it. Default: SWARM_STREAM_REPLICAS of `env`; when that
   * is unset too, new ones get 1 and existing ones keep theirs.
   */
  streamReplicas?: number;
  /** Signs and checks events (event-guard.ts); default: from `env` (SWARM_IDENTITIES, NATS_NKEY). */
  guard?: EventGuard;
}

export interface Orchestrator {
  /** Stop taking work; hand every mission back (leases released) for another orchestrator to resume. */
  stop(): Promise<void>;
  /** Missions this orchestrator is running now. */
  active(): string[];
  /** Events refused by the event guard since start (forged, unsigned, from the wrong role). */
  refusedEvents(): number;
}

export const DEFAULT_MISSION_LEASE_MS = 15_000;

/**
 * The orchestrator process: takes submitted missions from SQUAD_MISSIONS,
 * plans them, and drives each mission's state machine from the events in
 * SQUAD_EVENTS. This function wires its parts:
 *
 * - intake (submission-intake.ts): submissions → leases → planning;
 * - planning (submission-planning.ts, replanner.ts): brief → mission_planned;
 * - launch (mission-launch.ts): a runner per mission, new or resumed;
 * - adoption (mission-adoption.ts): leases, and taking over the unfinished
 *   missions of an orchestrator that died, rebuilt from their events;
 * - timers (mission-timers.ts): ticks, lease renewal, the takeover scan;
 * - the command shell (mission-runner.ts): the machine's commands → publishes;
 * - the merge queue (merge-link.ts): succeeded attempts' commits onto the mission branch.
 *
 * It keeps the events of every unfinished mission (the replay at start, then
 * the live feed) in a MissionBook, so a takeover needs no second read, and
 * folds every event into the mission view (mission-view-writer.ts), which
 * also tells the next start where the unfinished missions begin.
 * Nothing is lost, and no task that succeeded runs again.
 */
export async function startOrchestrator(opts: OrchestratorOptions): Promise<Orchestrator> {
  const { nc, log, instance } = opts;
  const leaseMs = opts.leaseMs ?? DEFAULT_MISSION_LEASE_MS;
  const agentNames = opts.roster.agents.map((a) => a.name);

  const env = opts.env ?? process.env;
  const bus = await openOrchestratorBus({ ...opts, env });
  const { guard, publisher, leases, claims, view } = bus;
  const sweeper = startForeignTaskSweeper(nc, {
    roster: agentNames,
    log,
    everyMs: opts.foreignSweepMs ?? 10_000,
  });
  const merges = startMergeQueue({ ...opts, publisher, env });
  const runners = new Map<string, MissionRunner>();
  const book = new MissionBook();
  const events = createEventIntake({ guard, book, claims, log });
  let stopping = false;
  const isStopping = () => stopping;
  /** Aborts planner calls when the orchestrator stops. */
  const stopController = new AbortController();

  const replan = createReplanner({
    publisher,
    log,
    roster: opts.roster,
    plannerModel: opts.plannerModel,
    env: opts.env,
    signal: stopController.signal,
  });
  const runnerDeps: MissionRunnerDeps = {
    publisher,
    log,
    workspaceRoot: opts.workspaceRoot,
    replan,
    onFinished: (runner) => {
      if (runners.get(runner.id) === runner) runners.delete(runner.id);
      leases.complete(runner.id, instance).catch((err: unknown) => {
        log.warn({ mission: runner.id, err: errorMessage(err) }, "mission lease not completed");
      });
    },
    discardQueued: bus.discardQueued,
    merges: merges.link,
  };
  const launcher = createMissionLauncher({
    book,
    runners,
    runnerDeps,
    workspaceRoot: opts.workspaceRoot,
    startTimeoutS: opts.startTimeoutS,
    maxReplans: opts.maxReplans,
  });
  const adoption = createMissionAdoption({
    leases,
    book,
    runners,
    launcher,
    instance,
    leaseMs,
    log,
    isStopping,
  });

  // ---- what was recorded before we started: from the oldest unfinished mission on (mission view)
  let lastSeq = view.fromSeq - 1;
  for await (const { event, seq, message } of replayEvents(nc, { log, fromSeq: view.fromSeq })) {
    lastSeq = seq;
    if (isProgressType(event.type) || !(await events.admit(event, message))) continue;
    book.add(event);
    view.writer.observe(event, seq);
  }

  // ---- live events, from right after what was replayed
  const feed: EventFeed = await followEvents(nc, {
    fromSeq: lastSeq + 1,
    log,
    // Neither the machine nor the book uses steps and model calls (the report's are in results).
    skipTypes: PROGRESS_TYPES,
    admit: events.admit,
    onEvent: (event, seq) => {
      book.add(event);
      view.writer.observe(event, seq);
      const runner = event.mission_id ? runners.get(event.mission_id) : undefined;
      runner?.observe(event, inputFromEvent(event));
    },
  });

  // ---- take over unfinished missions: now, and whenever a lease lapses
  const resumable = book.resumable();
  for (const id of resumable) await adoption.adopt(id);
  const timers = startMissionTimers({
    runners,
    adoption,
    tickMs: opts.tickMs ?? 1000,
    leaseMs,
  });

  // ---- intake: submitted missions, one at a time
  const intake = runSubmissionIntake({
    nc,
    consumer: await jetstream(nc).consumers.get(STREAMS.missions, MISSIONS_DURABLE),
    book,
    runners,
    leases,
    guard,
    instance,
    leaseMs,
    log,
    isStopping,
    planSubmission: createSubmissionPlanning({
      book,
      launcher,
      leases,
      publisher,
      roster: opts.roster,
      instance,
      leaseMs,
      plannerModel: opts.plannerModel,
      env: opts.env,
      signal: stopController.signal,
      isStopping,
    }),
  });

  log.info(
    { resumed: runners.size, unfinished: resumable.length, replayed: [view.fromSeq, lastSeq] },
    "orchestrator ready",
  );

  return {
    active: () => [...runners.keys()],
    refusedEvents: () => guard.refused(),
    async stop() {
      if (stopping) return;
      stopping = true;
      timers.stop();
      await sweeper.stop();
      const mine = [...runners.values()];
      // Abandon first: an aborted planner call must not fail the mission.
      for (const r of mine) r.abandon();
      stopController.abort("the orchestrator is stopping");
      await intake;
      await Promise.all(mine.map((r) => r.idle().catch(() => undefined)));
      await merges.integrator.stop();
      await feed.stop();
      await view.writer.stop();
      // Released (not completed): another orchestrator may resume them at once.
      await Promise.all(
        mine.map((r) =>
          r.finished ? undefined : leases.release(r.id, instance).catch(() => undefined),
        ),
      );
      runners.clear();
      if (!opts.guard) await guard.stop();
    },
  };
}

export type { LeaseStore, Publisher };
