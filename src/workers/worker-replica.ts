import type { NatsConnection } from "@nats-io/transport-node";
// The bus modules themselves, not the barrel (bus/index.ts): a replica then never loads
// what only the CLI and the orchestrator use (event feed, swarm status).
import { openEventGuard, type EventGuard } from "../bus/event-guard.ts";
import { CLAIMS_BUCKET } from "../bus/leases.ts";
import { createPublisher } from "../bus/publisher.ts";
import { createTaskPuller } from "../bus/task-puller.ts";
import { watchEvents } from "../bus/watcher.ts";
import type { Logger } from "../log.ts";
import { MISSION_END_TYPES, subjects } from "../schema/index.ts";
import { compileCommandPolicy } from "../tools/command-policy.ts";
import { sandboxForAgent } from "../tools/sandbox.ts";
import { prepareTaskNetworks } from "../tools/task-network.ts";
import { createApprovalBroker } from "./approvals.ts";
import { createCoordinationIntake } from "./coordination-intake.ts";
import type { DeliveryTuning } from "./delivery-policy.ts";
import { InFlightTasks } from "./in-flight-tasks.ts";
import { EndedMissions } from "./mission-ends.ts";
import { openClaims, prepareBus } from "./replica-bus.ts";
import {
  mustHandBack,
  nextPhase,
  type LifecycleEvent,
  type ReplicaPhase,
} from "./replica-lifecycle.ts";
import { sandboxRequest } from "./replica-sandbox.ts";
import { createReplicaStatus } from "./replica-status.ts";
import type { RosterAgent } from "./roster.ts";
import { redactingPublish, secretValues } from "./secret-redaction.ts";
import { createClaims } from "./task-claim.ts";
import { DRAIN_REASON } from "./task-executor.ts";
import { createTaskHandler } from "./task-handler.ts";
import { createWorkerWorkspaces } from "./worker-workspaces.ts";

export { CLAIMS_BUCKET };
export { checkSandbox, sandboxRequest } from "./replica-sandbox.ts";

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
  /** Ceiling of the delay before a task whose model server is down is offered again (full jitter); doubles per delivery, max 30 s. Default 2 s. */
  modelRetryBaseMs?: number;
  /**
   * The worker's environment: model endpoints are read from it, and its secrets are scrubbed from events.
   * SWARM_SANDBOX (bwrap | none) is the sandbox of agents whose roster entry names none;
   * SWARM_BWRAP_BIN the bubblewrap binary (default: bwrap on PATH).
   */
  env?: NodeJS.ProcessEnv;
  /** Signs and checks events (event-guard.ts); default: from `env` (SWARM_IDENTITIES, NATS_NKEY). */
  guard?: EventGuard;
}

export interface WorkerReplica {
  /** Stop pulling, finish or hand back in-flight work, say `agent_offline`. */
  stop(reason?: string): Promise<void>;
  /** Resolves when the pull loop has ended; rejects if the NATS connection closed under it. */
  done: Promise<void>;
  inFlight(): number;
  /** Events refused by the event guard since start (also in every heartbeat). */
  refusedEvents(): number;
}

const MAX_MODEL_RETRY_MS = 30_000;

/**
 * One replica of one agent: pulls from the shared durable `worker-<agent>`,
 * claims each attempt in KV (task-claim.ts), runs it (attempt-execution.ts),
 * reports (attempt-reporting.ts), then acks; what it answers JetStream in
 * every case is the delivery policy's (delivery-policy.ts), and
 * task-handler.ts puts these together for one delivery. This function wires
 * them and keeps the replica's lifecycle (replica-lifecycle.ts):
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
  const env = opts.env ?? process.env;
  const secrets = secretValues(env);
  const tuning: DeliveryTuning = {
    leaseMs: opts.leaseMs ?? 15_000,
    modelRetryBaseMs: opts.modelRetryBaseMs ?? 2_000,
    maxModelRetryMs: MAX_MODEL_RETRY_MS,
    random: Math.random,
  };
  let phase: ReplicaPhase = { phase: "starting" };
  const become = (e: LifecycleEvent) => (phase = nextPhase(phase, e));

  // Security first: a worker that can't confine commands as asked must not pull any.
  const policy = compileCommandPolicy(agent.policy);
  const sandbox = await sandboxForAgent({
    ...sandboxRequest(agent, env),
    workspaceRoot: opts.workspaceRoot,
    network: policy.network,
    ...(agent.limits ? { limits: agent.limits } : {}),
    env,
    log,
  });
  // Where task networks can't work, its network: true commands fail (never run on the host's).
  if (sandbox?.kind === "bwrap" && sandbox.network) await prepareTaskNetworks(agent.name, log);

  const guard =
    opts.guard ??
    (await openEventGuard(nc, { env, log, expect: { role: "worker", agent: agent.name } }));
  await prepareBus(nc, agent.name, log, {
    ...(opts.ackWaitMs ? { ackWaitMs: opts.ackWaitMs } : {}),
    ...(opts.maxDeliver ? { maxDeliver: opts.maxDeliver } : {}),
  });
  const publisher = createPublisher(nc, { log, signer: guard.signer });
  const leases = await openClaims(nc);
  const inFlight = new InFlightTasks();
  const workspaces = createWorkerWorkspaces({ nc, root: opts.workspaceRoot, instance, env, log });
  const ended = new EndedMissions((mission) => workspaces.endMission(mission));

  /** Every task event goes out scrubbed of the worker's secrets (see secret-redaction.ts). */
  const publishTaskEvent = redactingPublish(publisher, secrets);
  const approvals = createApprovalBroker({
    agent: agent.name,
    worker,
    publish: publishTaskEvent,
    log,
  });

  // Missions end on squad.coordination; their in-flight tasks stop there and then.
  const endWatch = watchEvents(nc, {
    subject: subjects.coordination,
    // Every task event of every replica passes here too: decode only what this replica acts on.
    types: [...MISSION_END_TYPES, "approval_resolved"],
    log,
    // Only what the event guard admits: a forged decision or mission end is refused there.
    onEvent: createCoordinationIntake({
      guard,
      agent: agent.name,
      approvals,
      onMissionEnd: (e) => {
        const reason = ended.note(e);
        if (reason && e.mission_id) inFlight.abortMission(e.mission_id, reason);
      },
    }),
  });
  await endWatch.ready;

  const status = createReplicaStatus({
    publisher,
    log,
    agent: agent.name,
    instance,
    heartbeatMs: opts.heartbeatMs ?? 5_000,
    inFlight: () => inFlight.size,
    refused: () => guard.refused(),
    workspaceBytes: () => workspaces.diskBytes(),
  });
  await status.online({
    concurrency: opts.concurrency,
    model: agent.model ?? opts.defaultModel,
    version: opts.version,
  });
  const handle = createTaskHandler({
    log,
    tuning,
    claims: createClaims({ leases, instance, tuning }),
    inFlight,
    ended,
    mustHandBack: () => mustHandBack(phase),
    execution: {
      workspaceRoot: opts.workspaceRoot,
      agent,
      defaultModel: opts.defaultModel,
      worker,
      maxModelCalls: opts.maxModelCalls ?? 24,
      env,
      sandbox,
      policy,
      approvals,
      workspaces,
    },
    reporting: {
      publishTaskEvent,
      worker,
      log,
      counters: status.counters,
      secrets,
      maxPayload: () => nc.info?.max_payload,
    },
    confirmsClaim: () => guard.mode() === "signed",
  });
  // A task_assigned the guard refuses (not the orchestrator's) is dead-lettered, never run.
  const puller = createTaskPuller(nc, {
    agent: agent.name,
    slots: opts.concurrency,
    log,
    admit: (event, msg) => guard.admit(msg, event),
  });
  const done = puller.run(handle);
  become({ type: "online", now: Date.now() });
  log.info({ agent: agent.name, instance, concurrency: opts.concurrency }, "worker replica online");

  let stopping: Promise<void> | null = null;
  async function stop(reason = "stopped"): Promise<void> {
    stopping ??= (async () => {
      become({ type: "stop", now: Date.now(), reason });
      const drained = puller.stop();
      const timer = setTimeout(() => {
        become({ type: "drain_expired" });
        if (inFlight.size > 0)
          log.info({ in_flight: inFlight.size }, "drain timeout; handing back");
        inFlight.abortAll(DRAIN_REASON);
      }, opts.drainTimeoutMs ?? 10_000);
      await drained;
      clearTimeout(timer);
      status.stopHeartbeat();
      await endWatch.stop();
      await status.offline(reason);
      become({ type: "drained" });
      if (!opts.guard) await guard.stop();
      log.info({ reason }, "worker replica offline");
    })();
    return stopping;
  }

  return { stop, done, inFlight: () => inFlight.size, refusedEvents: () => guard.refused() };
}
