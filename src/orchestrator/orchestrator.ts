import { jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  buildDlqRecord,
  CLAIMS_BUCKET,
  createPublisher,
  ensureMissionsConsumer,
  followEvents,
  isTransientNatsError,
  MISSIONS_BUCKET,
  MISSIONS_DURABLE,
  openJetStreamManager,
  openLeaseStore,
  provisionStreams,
  publishDeadLetter,
  replayEvents,
  replicasFromEnv,
  type EventFeed,
  type LeaseStore,
  type Publisher,
} from "../bus/index.ts";
import { reportPaths } from "../config.ts";
import { BadInputError, errorMessage } from "../errors.ts";
import { classifyModelError, ModelUnavailableError } from "../llm/errors.ts";
import { resolveModelEndpoint } from "../llm/model-endpoint.ts";
import type { Logger } from "../log.ts";
import { decodeEvent, makeEvent, STREAMS, type EventOf, type SquadEvent } from "../schema/index.ts";
import type { Roster } from "../workers/roster.ts";
import { parseBrief, type Brief } from "./brief.ts";
import { planFromBrief, type PlanOutcome } from "./explicit-plan.ts";
import { startForeignTaskSweeper } from "./foreign-tasks.ts";
import { MissionBook } from "./mission-book.ts";
import { inputFromEvent, inputsFromEvents } from "./mission-history.ts";
import {
  createMission,
  replay,
  resume,
  type MissionCommand,
  type MissionInput,
} from "./mission-machine.ts";
import { MissionRunner, type MissionMeta, type ReplanCommand } from "./mission-runner.ts";
import type { ReplanContext } from "./planner.ts";

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
}

export interface Orchestrator {
  /** Stop taking work; hand every mission back (leases released) for another orchestrator to resume. */
  stop(): Promise<void>;
  /** Missions this orchestrator is running now. */
  active(): string[];
}

export const DEFAULT_MISSION_LEASE_MS = 15_000;
/** Deliveries of one submission before a planner outage fails the mission. */
const MAX_PLANNING_DELIVERIES = 5;
/** Tries of one replan while the planner's server is unavailable. */
const MAX_REPLAN_TRIES = 3;
const FINAL_TYPES = new Set(["mission_completed", "mission_failed", "mission_cancelled"]);

/**
 * The orchestrator process: takes submitted missions from SQUAD_MISSIONS,
 * plans them, and drives each mission's state machine from the events in
 * SQUAD_EVENTS.
 *
 * Every mission it runs is held by a lease in KV (`squad_missions`), renewed
 * while it runs, so two orchestrators never drive one mission. It keeps the
 * events of every unfinished mission (the replay at start, then the live
 * feed); a mission whose lease lapses (its orchestrator crashed) is taken
 * over by rebuilding its state machine from those events, at start and at
 * any time after. Nothing is lost, and no task that succeeded runs again.
 */
export async function startOrchestrator(opts: OrchestratorOptions): Promise<Orchestrator> {
  const { nc, log, instance } = opts;
  const leaseMs = opts.leaseMs ?? DEFAULT_MISSION_LEASE_MS;
  const tickMs = opts.tickMs ?? 1000;
  const agentNames = opts.roster.agents.map((a) => a.name);

  // Unset here and in the environment: existing streams and buckets keep their replicas, new ones get 1.
  const replicas = opts.streamReplicas ?? replicasFromEnv(opts.env ?? process.env);
  await provisionStreams(nc, { replicas, log });
  await ensureMissionsConsumer(nc);
  const publisher = createPublisher(nc, { log });
  const leases = await openLeaseStore(nc, MISSIONS_BUCKET, { replicas });
  // The workers' claims too: a worker user may open the bucket but not create it (nats.conf).
  await openLeaseStore(nc, CLAIMS_BUCKET, { replicas });
  const sweeper = startForeignTaskSweeper(nc, {
    roster: agentNames,
    log,
    everyMs: opts.foreignSweepMs ?? 10_000,
  });
  const jsm = await openJetStreamManager(nc, { check: false });
  const runners = new Map<string, MissionRunner>();
  const book = new MissionBook();
  /** Missions whose lease is being asked for right now. */
  const adopting = new Set<string>();
  /** Missions seen held by another orchestrator (logged once). */
  const heldElsewhere = new Set<string>();
  let stopping = false;
  /** Aborts planner calls when the orchestrator stops. */
  const stopController = new AbortController();

  const runnerDeps = {
    publisher,
    log,
    workspaceRoot: opts.workspaceRoot,
    replan: (runner: MissionRunner, cmd: ReplanCommand) => replanMission(runner, cmd),
    onFinished: (runner: MissionRunner) => {
      if (runners.get(runner.id) === runner) runners.delete(runner.id);
      leases.complete(runner.id, instance).catch((err: unknown) => {
        log.warn({ mission: runner.id, err: errorMessage(err) }, "mission lease not completed");
      });
    },
    discardQueued: async (seq: number) => {
      try {
        await jsm.streams.deleteMessage(STREAMS.tasks, seq, false);
      } catch (err) {
        // Already taken by a worker and acked: nothing is waiting.
        log.debug({ seq, err: errorMessage(err) }, "queued attempt not discarded");
      }
    },
  };

  // ---- what was recorded before we started
  let lastSeq = 0;
  for await (const { event, seq } of replayEvents(nc, { log })) {
    lastSeq = seq;
    book.add(event);
  }

  // ---- live events, from right after what was replayed
  const feed: EventFeed = await followEvents(nc, {
    fromSeq: lastSeq + 1,
    log,
    // Neither the machine nor the book uses progress events (the report's steps are in results).
    skipTypes: ["task_progress"],
    onEvent: (event) => {
      book.add(event);
      const runner = event.mission_id ? runners.get(event.mission_id) : undefined;
      runner?.observe(event, inputFromEvent(event));
    },
  });

  // ---- take over unfinished missions: now, and whenever a lease lapses
  const resumable = book.resumable();
  for (const id of resumable) await adopt(id);

  const ticker = setInterval(() => {
    const now = Date.now();
    for (const r of runners.values()) r.tick(now);
  }, tickMs);
  const renewer = setInterval(() => {
    for (const r of [...runners.values()]) {
      leases.renew(r.id, instance, leaseMs).then(
        (ok) => {
          if (ok || r.finished || runners.get(r.id) !== r) return;
          log.error({ mission: r.id }, "mission lease lost: another orchestrator took it over");
          r.abandon();
          runners.delete(r.id);
        },
        (err: unknown) =>
          log.warn({ mission: r.id, err: errorMessage(err) }, "lease renewal failed"),
      );
    }
  }, leaseMs / 3);
  const scanner = setInterval(
    () => {
      for (const id of book.resumable()) if (!runners.has(id)) void adopt(id);
    },
    Math.max(250, leaseMs / 2),
  );

  /** Take an unfinished mission over if its lease is free (first start, or its owner died). */
  async function adopt(missionId: string): Promise<void> {
    if (stopping || runners.has(missionId) || adopting.has(missionId)) return;
    adopting.add(missionId);
    try {
      const lease = await leases.acquire(missionId, instance, leaseMs);
      if (!lease.ok) {
        if (!heldElsewhere.has(missionId)) {
          heldElsewhere.add(missionId);
          log.info(
            { mission: missionId, holder: lease.holder, done: lease.done },
            "unfinished mission owned elsewhere",
          );
        }
        return;
      }
      heldElsewhere.delete(missionId);
      // The book is read now, after the await: it holds every event up to this moment.
      if (stopping || book.isFinished(missionId) || !book.firstPlan(missionId)) {
        await leases.release(missionId, instance);
        return;
      }
      const runner = startRunner(missionId, null);
      log.info(
        { mission: missionId, events: book.events(missionId).length, status: runner.state.status },
        "resuming mission",
      );
    } catch (err) {
      log.warn({ mission: missionId, err: errorMessage(err) }, "could not take the mission over");
    } finally {
      adopting.delete(missionId);
    }
  }

  /**
   * Build a mission's runner from its recorded events and start it: replay
   * them into the machine, then publish what the machine decided but the
   * record lacks (re-dispatch of attempts in flight, a replan, the final
   * event, wave events). A new mission is the case of one recorded event,
   * its plan (plus a cancel request that came before it).
   */
  function startRunner(missionId: string, liveMeta: MissionMeta | null): MissionRunner {
    const events = book.events(missionId);
    const planned = book.firstPlan(missionId)!;
    const meta: MissionMeta = liveMeta ?? {
      title: planned.payload.title,
      sourcePath: planned.payload.source_path ?? null,
      planner: planned.payload.planner,
      plan: null,
      brief: null,
    };
    const runner = new MissionRunner(
      createMission({
        missionId,
        startedAt: Date.parse(planned.payload.submitted_at ?? planned.timestamp),
        budget: planned.payload.budget ?? {},
        reportPath: reportPaths(opts.workspaceRoot, missionId).md,
        ...(opts.startTimeoutS ? { startTimeoutS: opts.startTimeoutS } : {}),
        ...(opts.maxReplans !== undefined ? { maxReplans: opts.maxReplans } : {}),
      }),
      meta,
      runnerDeps,
    );
    for (const e of events) {
      runner.recorded.add(e.id);
      if (e.type === "task_completed" || e.type === "task_failed")
        runner.noteResult(e.task_id, e.payload.result);
    }
    const replayed = replay(runner.state, inputsFromEvents(events, missionId));
    const resumed = resume(replayed.state, Date.now());
    // Final events come from `resumed`; earlier ones the record lacks are sent first.
    const missed = replayed.commands.filter(
      (c): c is Extract<MissionCommand, { kind: "emit" }> =>
        c.kind === "emit" && !runner.recorded.has(c.id) && !FINAL_TYPES.has(c.event.type),
    );
    runners.set(missionId, runner);
    void runner.enqueueCommands(resumed.state, [...missed, ...resumed.commands]);
    return runner;
  }

  // ---- intake: submitted missions, one at a time
  const consumer = await jetstream(nc).consumers.get(STREAMS.missions, MISSIONS_DURABLE);
  const intake = (async () => {
    while (!stopping) {
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: 2000 });
      } catch (err) {
        if (stopping) break;
        if (!isTransientNatsError(err))
          log.warn({ err: errorMessage(err) }, "mission intake pull failed");
        await sleep(500);
        continue;
      }
      if (!m) continue;
      if (stopping) {
        m.nak();
        break;
      }
      try {
        await takeSubmission(m);
      } catch (err) {
        log.error({ err: errorMessage(err) }, "submission handling failed; will be redelivered");
        m.nak(2000);
      }
    }
  })();

  async function takeSubmission(m: JsMsg): Promise<void> {
    let event: SquadEvent;
    try {
      event = decodeEvent(m.data);
      if (event.type !== "mission_submitted")
        throw new Error(`expected mission_submitted, got ${event.type}`);
      if (!event.mission_id) throw new Error("mission_submitted without mission_id");
    } catch (err) {
      await publishDeadLetter(
        jetstream(nc),
        buildDlqRecord({
          agent: "orchestrator",
          reason: errorMessage(err),
          subject: m.subject,
          streamSeq: m.seq,
          deliveryCount: m.info.deliveryCount,
          data: m.data,
        }),
      );
      m.term();
      log.warn({ seq: m.seq, err: errorMessage(err) }, "invalid submission sent to the DLQ");
      return;
    }
    const missionId = event.mission_id;
    const mlog = log.child({ mission: missionId });
    // Planned already (here or elsewhere): it runs, or is resumed when its lease lapses.
    if (runners.has(missionId) || book.isFinished(missionId) || book.firstPlan(missionId)) {
      mlog.info("mission already planned; repeated submission dropped");
      m.ack();
      return;
    }
    const lease = await leases.acquire(missionId, instance, leaseMs);
    if (!lease.ok) {
      if (lease.done) {
        mlog.info("mission already ran; repeated submission dropped");
        m.ack();
      } else {
        m.nak(Math.max(1000, lease.expiresAt - Date.now() + 500));
      }
      return;
    }
    // The submission and the lease stay ours while the planner thinks.
    const keepAlive = setInterval(
      () => {
        m.working();
        leases.renew(missionId, instance, leaseMs).catch(() => undefined);
      },
      Math.min(5000, leaseMs / 3),
    );
    try {
      await planAndStart(event, m, mlog);
    } catch (err) {
      if (!runners.has(missionId)) await leases.release(missionId, instance).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(keepAlive);
    }
  }

  async function planAndStart(
    event: EventOf<"mission_submitted">,
    m: JsMsg,
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
      const runner = new MissionRunner(
        createMission({
          missionId,
          startedAt: submittedAt,
          reportPath: reportPaths(opts.workspaceRoot, missionId).md,
        }),
        { title, sourcePath: event.payload.source_path, planner, plan: null, brief: null },
        runnerDeps,
      );
      runners.set(missionId, runner);
      await runner.enqueue(input);
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
        outcome = await runPlanner(planner, {
          brief,
          agents: opts.roster.agents,
          signal: stopController.signal,
        });
      } catch (err) {
        if (stopping) {
          mlog.info("orchestrator stopping; submission handed back");
          return handBack(0);
        }
        if (
          err instanceof ModelUnavailableError &&
          m.info.deliveryCount < MAX_PLANNING_DELIVERIES
        ) {
          // The client has retried already; then 1 s, 2 s, 4 s... between deliveries.
          const delay = Math.min(30_000, 1000 * 2 ** (m.info.deliveryCount - 1));
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
        source_path: event.payload.source_path,
      },
    );
    // Record before acting: a crash after this publish resumes from it.
    await publisher.publish(plannedEvent);
    book.add(plannedEvent);
    startRunner(missionId, {
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
  }

  /** planMission with the model loaded on first use; model outages come out classified. */
  async function runPlanner(
    spec: string,
    args: {
      brief: Brief;
      agents: Roster["agents"];
      signal: AbortSignal;
      previous?: ReplanContext;
    },
  ): Promise<PlanOutcome> {
    const { planMission, createChatModel } = await loadPlanner();
    try {
      return await planMission({
        model: createChatModel(spec, { env: opts.env }),
        brief: args.brief,
        agents: args.agents,
        signal: args.signal,
        ...(args.previous ? { previous: args.previous } : {}),
      });
    } catch (err) {
      throw classifyModelError(err, spec, endpointUrl(spec));
    }
  }

  function endpointUrl(spec: string): string | undefined {
    try {
      return resolveModelEndpoint(spec, opts.env ?? process.env).url;
    } catch {
      return undefined;
    }
  }

  async function replanMission(runner: MissionRunner, cmd: ReplanCommand): Promise<void> {
    if (!opts.plannerModel) {
      await runner.enqueue({
        type: "replan_result",
        now: Date.now(),
        error:
          "no planner model is configured (SWARM_PLANNER_MODEL), so the plan can not be revised",
      });
      return;
    }
    const brief: Brief = {
      title: runner.meta.title,
      agents: runner.meta.brief?.agents ?? null,
      budget: {},
      plan: null,
      body:
        runner.meta.brief?.body ??
        `# ${runner.meta.title}\n\n(The original brief is not available after a restart; the strategy of the plan that ran:)\n\n${cmd.plan.strategy}`,
      sourcePath: runner.meta.sourcePath,
    };
    let outcome: PlanOutcome;
    for (let tries = 1; ; tries++) {
      try {
        outcome = await runPlanner(opts.plannerModel, {
          brief,
          agents: opts.roster.agents,
          signal: stopController.signal,
          previous: { plan: cmd.plan, results: cmd.results, failed: cmd.failed },
        });
        break;
      } catch (err) {
        if (runner.abandoned) return;
        if (!(err instanceof ModelUnavailableError) || tries >= MAX_REPLAN_TRIES) throw err;
        log.warn({ mission: runner.id, err: err.message, tries }, "planner unavailable; retrying");
        await sleep(2000 * tries);
      }
    }
    if (runner.abandoned) return;
    if (!outcome.ok) {
      await runner.enqueue({
        type: "replan_result",
        now: Date.now(),
        error: `the planner could not revise the plan: ${outcome.problems.join("; ")}`,
      });
      return;
    }
    const e = makeEvent(
      "mission_planned",
      { id: `${runner.id}.planned.${cmd.revision}`, mission_id: runner.id, source: "orchestrator" },
      {
        title: runner.meta.title,
        plan: outcome.plan,
        planner: opts.plannerModel,
        revision: cmd.revision,
        source_path: runner.meta.sourcePath,
      },
    );
    // Recorded first: the feed must not feed it back as a second answer.
    runner.recorded.add(e.id);
    await publisher.publish(e);
    await runner.enqueue({
      type: "replan_result",
      now: Date.parse(e.timestamp),
      plan: outcome.plan,
    });
  }

  log.info(
    { resumed: runners.size, unfinished: resumable.length, replayed_events: lastSeq },
    "orchestrator ready",
  );

  return {
    active: () => [...runners.keys()],
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(ticker);
      clearInterval(renewer);
      clearInterval(scanner);
      await sweeper.stop();
      const mine = [...runners.values()];
      // Abandon first: an aborted planner call must not fail the mission.
      for (const r of mine) r.abandon();
      stopController.abort("the orchestrator is stopping");
      await intake;
      await Promise.all(mine.map((r) => r.idle().catch(() => undefined)));
      await feed.stop();
      // Released (not completed): another orchestrator may resume them at once.
      await Promise.all(
        mine.map((r) =>
          r.finished ? undefined : leases.release(r.id, instance).catch(() => undefined),
        ),
      );
      runners.clear();
    },
  };
}

/** LangChain loads only when a model is used: explicit plans start faster without it. */
async function loadPlanner() {
  const [{ planMission }, { createChatModel }] = await Promise.all([
    import("./planner.ts"),
    import("../llm/chat-model.ts"),
  ]);
  return { planMission, createChatModel };
}

function is<T extends SquadEvent["type"]>(type: T) {
  return (e: SquadEvent): e is EventOf<T> => e.type === type;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { LeaseStore, Publisher };
