import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { errors, type NatsConnection } from "@nats-io/transport-node";
// The bus modules themselves, not the barrel (bus/index.ts): a replica then never loads
// what only the CLI and the orchestrator use (event feed, swarm status).
import { ensureWorkerConsumer } from "../bus/consumers.ts";
import { openJetStreamManager } from "../bus/jetstream-manager.ts";
import { CLAIMS_BUCKET, LeaseLostError, openLeaseStore, type LeaseStore } from "../bus/leases.ts";
import { createPublisher } from "../bus/publisher.ts";
import { provisionStreams } from "../bus/streams.ts";
import { createTaskPuller, type TaskDelivery } from "../bus/task-puller.ts";
import { watchEvents } from "../bus/watcher.ts";
import { BadInputError, InfrastructureError, errorMessage } from "../errors.ts";
import { ModelUnavailableError } from "../llm/errors.ts";
import type { Logger } from "../log.ts";
import {
  STREAMS,
  makeEvent,
  subjects,
  workerDurable,
  type SquadEvent,
  type Step,
  type TaskResult,
} from "../schema/index.ts";
import { compileCommandPolicy } from "../tools/command-policy.ts";
import {
  SandboxMode,
  probeBwrap,
  resolveSandbox,
  sandboxForAgent,
  sandboxUnavailable,
} from "../tools/sandbox.ts";
import { createApprovalBroker, createApprovalGate } from "./approvals.ts";
import { DRAIN_REASON, TIMEOUT_REASON, executeTask, failedResult } from "./task-executor.ts";
import type { RosterAgent } from "./roster.ts";
import { redactSecrets, secretValues } from "./secret-redaction.ts";

export { CLAIMS_BUCKET };

export interface WorkerReplicaOptions {
  nc: NatsConnection;
  agent: RosterAgent;
  instance: string;
  /** Tasks in flight at once in this replica. */
  concurrency: number;
  workspaceRoot: string;
  defaultModel: string;
  version: string;
  log: Logger;
  heartbeatMs?: number;
  /** Claim lease; renewed while the task runs, so a dead replica's claim lapses. Default 15 s. */
  leaseMs?: number;
  /** On stop, how long in-flight tasks may finish before they are handed back. Default 10 s. */
  drainTimeoutMs?: number;
  maxModelCalls?: number;
  /** The consumer's ack_wait (applied to the shared durable). Default: the bus default, 30 s. */
  ackWaitMs?: number;
  /** The consumer's max_deliver (applied to the shared durable). Default: the bus default, 5. */
  maxDeliver?: number;
  /** Delay before a task whose model server is down is offered again; doubles per delivery, max 30 s. Default 2 s. */
  modelRetryBaseMs?: number;
  /**
   * The worker's environment: model endpoints are read from it, and its secrets are scrubbed from events.
   * SWARM_SANDBOX (bwrap | none) is the sandbox of agents whose roster entry names none;
   * SWARM_BWRAP_BIN the bubblewrap binary (default: bwrap on PATH).
   */
  env?: NodeJS.ProcessEnv;
}

export interface WorkerReplica {
  /** Stop pulling, finish or hand back in-flight work, say `agent_offline`. */
  stop(reason?: string): Promise<void>;
  /** Resolves when the pull loop has ended; rejects if the NATS connection closed under it. */
  done: Promise<void>;
  inFlight(): number;
}

/** Abort reason when the claim was taken by another replica (our lease lapsed). */
const LEASE_LOST_REASON = "claim lost to another replica";
/** Missions remembered as ended, so their queued tasks are dropped (bounded). */
const ENDED_MISSIONS_KEPT = 1000;
const MAX_MODEL_RETRY_MS = 30_000;

/**
 * One replica of one agent: pulls from the shared durable `worker-<agent>`,
 * claims each attempt in KV (`<mission>.<task>.<attempt>`, so a redelivered
 * or re-published attempt is never worked twice at once), runs it, reports,
 * then acks.
 *
 * Delivery rules:
 * - claim held and done: the attempt was reported already; ack and drop.
 * - claim held by a live replica: nak until its lease lapses (on the last
 *   delivery, wait here instead: a nak would strand the message).
 * - model server unavailable: release the claim, nak with backoff; on the
 *   last delivery report `task_failed` with `retryable: false`.
 * - stop(): no more pulls; in-flight tasks get `drainTimeoutMs`, then are
 *   aborted ("drain") and handed back with a nak.
 * - `mission_cancelled` / `mission_failed` / `mission_completed` abort that
 *   mission's in-flight tasks (reported as failed) and drop its queued ones.
 *
 * Security (docs/security.md): before pulling anything it settles the
 * sandbox of its commands (roster `sandbox`, else SWARM_SANDBOX, else bwrap
 * where it works; an asked-for bwrap that can't work is a BadInputError).
 * Every command (run step, run_shell, verify) passes the agent's `policy`
 * gate first; one needing approval waits here, the delivery kept alive, for
 * `approval_resolved` on squad.coordination. Under a worker NATS user that
 * may not create streams or buckets, existing ones are used as they are.
 */
export async function startWorkerReplica(opts: WorkerReplicaOptions): Promise<WorkerReplica> {
  const { nc, agent, instance, log } = opts;
  const worker = `${agent.name}/${instance}`;
  const leaseMs = opts.leaseMs ?? 15_000;
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
  const modelRetryBaseMs = opts.modelRetryBaseMs ?? 2_000;
  const env = opts.env ?? process.env;
  const secrets = secretValues(env);
  const startedAt = Date.now();
  const counters = { completed: 0, failed: 0 };

  // Security first: a worker that can't confine commands as asked must not pull any.
  const policy = compileCommandPolicy(agent.policy);
  const sandbox = await sandboxForAgent({
    ...sandboxRequest(agent, env),
    workspaceRoot: opts.workspaceRoot,
    network: policy.network,
    log,
  });

  await prepareBus(nc, agent.name, log, {
    ...(opts.ackWaitMs ? { ackWaitMs: opts.ackWaitMs } : {}),
    ...(opts.maxDeliver ? { maxDeliver: opts.maxDeliver } : {}),
  });
  const publisher = createPublisher(nc, { log });
  const leases = await openClaims(nc);
  const running = new Map<string, { mission: string; abort: (reason: string) => void }>();
  const endedMissions = new Map<string, string>();
  let drainExpired = false;

  /** Every task event goes out scrubbed of the worker's secrets (see secret-redaction.ts). */
  const publishTaskEvent = (event: SquadEvent) => publisher.publish(redactSecrets(event, secrets));
  const approvals = createApprovalBroker({
    agent: agent.name,
    worker,
    publish: publishTaskEvent,
    log,
  });

  const statusFields = { mission_id: null, source: worker };
  const publishStatus = async (build: () => SquadEvent): Promise<void> => {
    try {
      await publisher.publish(build());
    } catch (err) {
      log.warn({ err: errorMessage(err) }, "status event not published");
    }
  };

  // Missions end on squad.coordination; their in-flight tasks stop there and then.
  const endWatch = watchEvents(nc, {
    subject: subjects.coordination,
    // Every task event of every replica passes here too: decode only what this replica acts on.
    types: [...MISSION_END_TYPES, "approval_resolved"],
    log,
    onEvent: (e) => {
      approvals.onEvent(e);
      const reason = missionEndReason(e);
      if (!reason || !e.mission_id) return;
      endedMissions.set(e.mission_id, reason);
      if (endedMissions.size > ENDED_MISSIONS_KEPT) {
        const oldest = endedMissions.keys().next().value;
        if (oldest !== undefined) endedMissions.delete(oldest);
      }
      for (const r of running.values()) if (r.mission === e.mission_id) r.abort(reason);
    },
  });
  await endWatch.ready;

  await publishStatus(() =>
    makeEvent("agent_online", statusFields, {
      agent: agent.name,
      instance,
      pid: process.pid,
      host: hostname(),
      concurrency: opts.concurrency,
      model: agent.model ?? opts.defaultModel,
      version: opts.version,
    }),
  );
  /** Counts at the last "tasks done" line: one info line per heartbeat with work, not per task. */
  const logged = { completed: 0, failed: 0 };
  const logProgress = () => {
    const completed = counters.completed - logged.completed;
    const failed = counters.failed - logged.failed;
    if (completed === 0 && failed === 0) return;
    Object.assign(logged, counters);
    log.info({ completed, failed, in_flight: running.size }, "tasks done");
  };
  const heartbeat = setInterval(() => {
    logProgress();
    void publishStatus(() =>
      makeEvent("agent_heartbeat", statusFields, {
        agent: agent.name,
        instance,
        in_flight: running.size,
        completed: counters.completed,
        failed: counters.failed,
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
      }),
    );
  }, heartbeatMs);
  heartbeat.unref();

  /**
   * Take the attempt's claim (its KV revision), or settle the delivery and answer null.
   * On the last delivery a nak would leave the message in the work queue
   * for good, so a live holder is waited out here (the puller keeps the
   * delivery alive meanwhile).
   */
  async function claim(
    d: TaskDelivery,
    key: string,
    tlog: () => Logger,
    store: LeaseStore,
  ): Promise<number | null> {
    const waitUntil = Date.now() + 2 * leaseMs;
    for (;;) {
      const c = await store.acquire(key, instance, leaseMs);
      if (c.ok) return c.revision;
      if (c.done) {
        tlog().info({ holder: c.holder }, "attempt already reported; duplicate delivery dropped");
        await d.ack();
        return null;
      }
      const wait = Math.max(500, c.expiresAt - Date.now() + 250);
      if (!d.isLastDelivery) {
        tlog().info({ holder: c.holder, retry_in_ms: wait }, "attempt held by another replica");
        d.nak(wait);
        return null;
      }
      if (Date.now() >= waitUntil) {
        // Still renewed after two lease periods: the holder is alive and will report.
        tlog().info({ holder: c.holder }, "attempt worked by a live replica; last copy dropped");
        await d.ack();
        return null;
      }
      await sleep(Math.min(wait, leaseMs));
    }
  }

  async function handle(d: TaskDelivery): Promise<void> {
    const task = d.event.payload.task;
    // Never null here: the puller dead-letters a task_assigned without one.
    const mission = d.event.mission_id;
    const key = `${mission}.${task.id}.${task.attempt}`;
    // The task's child logger, made on first use: a task that goes well logs nothing at info.
    let child: Logger | undefined;
    const tlog = (): Logger =>
      (child ??= log.child({ mission, task: task.id, attempt: task.attempt }));
    const ended = endedMissions.get(mission);
    if (ended) {
      tlog().info({ reason: ended }, "mission has ended; task dropped");
      await d.ack();
      return;
    }
    const claimed = await claim(d, key, tlog, leases);
    if (claimed === null) return;
    /** The claim's revision as we last wrote it; unknown once a renewal has rewritten it. */
    let revision: number | undefined = claimed;

    const fields = {
      mission_id: mission,
      task_id: task.id,
      source: worker,
      correlation_id: d.event.id,
    };
    const controller = new AbortController();
    const abort = (reason: string) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    running.set(key, { mission, abort });
    if (drainExpired) abort(DRAIN_REASON);
    const lateEnd = endedMissions.get(mission);
    if (lateEnd) abort(lateEnd);
    const timeout = setTimeout(() => abort(TIMEOUT_REASON), task.timeout_s * 1000);
    const renew = setInterval(() => {
      revision = undefined;
      leases.renew(key, instance, leaseMs).then(
        (ok) => {
          if (!ok && !controller.signal.aborted) {
            tlog().warn("claim lost (lease lapsed and taken over); attempt abandoned");
            abort(LEASE_LOST_REASON);
          }
        },
        (err: unknown) => tlog().warn({ err: errorMessage(err) }, "lease renewal failed"),
      );
    }, leaseMs / 3);

    // Progress events go out in order, and all before the result.
    let progress: Promise<unknown> = Promise.resolve();
    const onStep = (step: Step) => {
      progress = progress.then(() =>
        publishTaskEvent(
          makeEvent("task_progress", fields, { attempt: task.attempt, worker, step }),
        ).catch((err: unknown) =>
          tlog().warn({ err: errorMessage(err) }, "progress not published"),
        ),
      );
    };
    const taskStartedAt = Date.now();
    try {
      await publishTaskEvent(
        makeEvent(
          "task_started",
          { ...fields, id: `${key}.started.${d.deliveryCount}` },
          { attempt: task.attempt, worker, delivery: d.deliveryCount },
        ),
      );
      // The start is on the bus (task_started); a log line per event is a measurable share of a
      // busy replica's CPU, so task lines are debug, bar failures (see "task done").
      if (log.isLevelEnabled("debug"))
        tlog().debug({ title: task.title, delivery: d.deliveryCount }, "task started");
      let result: TaskResult;
      try {
        result = await executeTask(task, {
          missionId: mission,
          workspaceRoot: opts.workspaceRoot,
          agent,
          defaultModel: opts.defaultModel,
          worker,
          signal: controller.signal,
          onStep,
          maxModelCalls: opts.maxModelCalls ?? 24,
          env,
          ...(sandbox ? { sandbox } : {}),
          gate: createApprovalGate({
            policy,
            broker: approvals,
            missionId: mission,
            taskId: task.id,
            attempt: task.attempt,
            correlationId: d.event.id,
          }),
        });
      } catch (err) {
        if (err instanceof ModelUnavailableError && !d.isLastDelivery) {
          const delay = Math.min(
            MAX_MODEL_RETRY_MS,
            modelRetryBaseMs * 2 ** Math.max(0, d.deliveryCount - 1),
          );
          tlog().warn(
            { err: err.message, retry_in_ms: delay },
            "model unavailable; attempt handed back",
          );
          await progress;
          await leases.release(key, instance);
          d.nak(delay);
          return;
        }
        // Out of deliveries, or a configuration error: final for this attempt.
        const final = err instanceof ModelUnavailableError || err instanceof BadInputError;
        result = failedResult(task, worker, err, {
          model: agent.model ?? opts.defaultModel,
          retryable: !final,
          startedAt: taskStartedAt,
        });
      }

      const reason: unknown = controller.signal.reason;
      if (reason === LEASE_LOST_REASON) {
        // Another replica runs this attempt now; the claim decides what the redelivery does.
        await progress;
        d.nak(leaseMs);
        return;
      }
      if (reason === DRAIN_REASON) {
        if (!d.isLastDelivery) {
          tlog().info("replica stopping; attempt handed back");
          await progress;
          await leases.release(key, instance);
          d.nak(1000);
          return;
        }
        // A nak on the last delivery would strand the message: report instead, so it can be re-dispatched.
        result = { ...result, retryable: true };
      }

      await progress;
      const type = result.status === "succeeded" ? "task_completed" : "task_failed";
      await publishTaskEvent(makeEvent(type, { ...fields, id: `${key}.result` }, { result }));
      if (result.status === "succeeded") counters.completed++;
      else counters.failed++;
      // A failure is an info line; a success is on the bus (task_completed), in the heartbeat's
      // counts and in the "tasks done" line logged once per heartbeat (logProgress).
      const level = result.status === "succeeded" ? "debug" : "info";
      if (log.isLevelEnabled(level)) {
        tlog()[level](
          {
            title: task.title,
            delivery: d.deliveryCount,
            status: result.status,
            ms: result.duration_ms,
            error: result.error && redactSecrets(result.error, secrets),
          },
          "task done",
        );
      }
      // The result is stored: mark the claim done and ack at once (neither waits for the other).
      // Either may be lost in a crash: an ack without a done claim leaves nothing to redeliver,
      // and a done claim without an ack makes the redelivery a dropped duplicate.
      const completed = leases
        .complete(key, instance, revision === undefined ? {} : { revision })
        .catch((err: unknown) => {
          if (!(err instanceof LeaseLostError)) throw err;
          // Our lease lapsed and another replica took over; both results carry the same id, so JetStream keeps one.
          tlog().warn(
            { err: err.message },
            "claim taken over while finishing; result published once",
          );
        });
      const [done, acked] = await Promise.allSettled([completed, d.ack()]);
      if (done.status === "rejected") throw done.reason;
      if (acked.status === "rejected") throw acked.reason;
    } catch (err) {
      // NATS trouble: give the claim up, so the redelivery the puller asks for can run at once.
      await leases.release(key, instance).catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timeout);
      clearInterval(renew);
      running.delete(key);
    }
  }

  const puller = createTaskPuller(nc, { agent: agent.name, slots: opts.concurrency, log });
  const done = puller.run(handle);
  log.info({ agent: agent.name, instance, concurrency: opts.concurrency }, "worker replica online");

  let stopping: Promise<void> | null = null;
  async function stop(reason = "stopped"): Promise<void> {
    stopping ??= (async () => {
      const drained = puller.stop();
      const timer = setTimeout(() => {
        drainExpired = true;
        if (running.size > 0) log.info({ in_flight: running.size }, "drain timeout; handing back");
        for (const r of running.values()) r.abort(DRAIN_REASON);
      }, drainTimeoutMs);
      await drained;
      clearTimeout(timer);
      clearInterval(heartbeat);
      logProgress();
      await endWatch.stop();
      await publishStatus(() =>
        makeEvent("agent_offline", statusFields, { agent: agent.name, instance, reason }),
      );
      log.info({ reason }, "worker replica offline");
    })();
    return stopping;
  }

  return { stop, done, inFlight: () => running.size };
}

/** Which sandbox the agent asks for, and who asked: the roster entry, else SWARM_SANDBOX. */
export function sandboxRequest(
  agent: RosterAgent,
  env: NodeJS.ProcessEnv,
): { agent: string; requested: SandboxMode | undefined; requestedBy: string; bwrapBin?: string } {
  const fromEnv = env.SWARM_SANDBOX?.trim();
  const machine = fromEnv ? SandboxMode.safeParse(fromEnv) : null;
  if (machine && !machine.success) {
    throw new BadInputError(`SWARM_SANDBOX must be bwrap or none, got ${JSON.stringify(fromEnv)}`);
  }
  const bin = env.SWARM_BWRAP_BIN?.trim();
  return {
    agent: agent.name,
    requested: agent.sandbox ?? machine?.data,
    requestedBy: agent.sandbox ? "the roster" : "SWARM_SANDBOX",
    ...(bin ? { bwrapBin: bin } : {}),
  };
}

/**
 * Fails (BadInputError) when the agent asks for a sandbox this machine can't
 * give, without touching NATS: `swarm worker` calls it before connecting.
 */
export async function checkSandbox(agent: RosterAgent, env: NodeJS.ProcessEnv): Promise<void> {
  const req = sandboxRequest(agent, env);
  const r = resolveSandbox(req.requested, await probeBwrap(req.bwrapBin));
  if ("error" in r) throw sandboxUnavailable(req.agent, req.requestedBy, r.error);
}

/**
 * Streams and the agent's durable, created or checked. Under nats.conf's
 * worker users a worker may read stream info and create/update only its own
 * durable, not create or change streams: when the streams exist (the
 * orchestrator provisions them) a permission error on create/update is fine.
 */
async function prepareBus(
  nc: NatsConnection,
  agent: string,
  log: Logger,
  consumer: { ackWaitMs?: number; maxDeliver?: number },
): Promise<void> {
  try {
    await provisionStreams(nc);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    const jsm = await openJetStreamManager(nc);
    for (const stream of [STREAMS.tasks, STREAMS.events, STREAMS.status, STREAMS.dlq]) {
      await jsm.streams.info(stream).catch((e: unknown) => {
        throw new InfrastructureError(
          `stream ${stream} is not usable and this NATS user may not create it: ${errorMessage(e)}`,
          "start the orchestrator first (`swarm orchestrator` or `swarm up`): it provisions the streams",
          { cause: e },
        );
      });
    }
    log.info("streams exist; this NATS user may not change them (as nats.conf intends)");
  }
  try {
    await ensureWorkerConsumer(nc, agent, consumer);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    const jsm = await openJetStreamManager(nc);
    await jsm.consumers.info(STREAMS.tasks, workerDurable(agent)).catch((e: unknown) => {
      throw new InfrastructureError(
        `consumer ${workerDurable(agent)} does not exist and this NATS user may not create it: ${errorMessage(e)}`,
        `allow publish on $JS.API.CONSUMER.CREATE.${STREAMS.tasks}.${workerDurable(agent)}.${subjects.tasks(agent)} in nats.conf`,
        { cause: e },
      );
    });
    log.warn("could not update the consumer's settings (no permission); using it as it is");
  }
}

/** The claims bucket; a worker user can open it but not create it. */
async function openClaims(nc: NatsConnection): Promise<LeaseStore> {
  try {
    return await openLeaseStore(nc, CLAIMS_BUCKET);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    throw new InfrastructureError(
      `the KV bucket ${CLAIMS_BUCKET} does not exist and this NATS user may not create it`,
      "start the orchestrator first: it creates the bucket (or create it once: `nats kv add squad_claims --history 1`)",
      { cause: err },
    );
  }
}

/** A NATS permissions violation, anywhere in the cause chain. */
export function isPermissionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof errors.PermissionViolationError) return true;
    if (/permissions violation/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}

/** The events missionEndReason answers for. */
const MISSION_END_TYPES = ["mission_cancelled", "mission_failed", "mission_completed"] as const;

/** Why a mission's in-flight tasks must stop, when `e` ends the mission (pure). */
export function missionEndReason(e: SquadEvent): string | null {
  switch (e.type) {
    case "mission_cancelled":
      return `cancelled: ${e.payload.reason}`;
    case "mission_failed":
      return `mission failed: ${e.payload.reason}`;
    case "mission_completed":
      return "mission already completed";
    default:
      return null;
  }
}
