import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Command } from "commander";
import { connectBus } from "../../bus/connect.ts";
import { BadInputError, ExitCode } from "../../errors.ts";
import { parseModelSpec } from "../../llm/model-spec.ts";
import { createLogger } from "../../log.ts";
import { newInstanceId } from "../../workers/instance-id.ts";
import { loadRoster } from "../../workers/roster.ts";
import { checkSandbox, startWorkerReplica } from "../../workers/worker-replica.ts";
import {
  positiveInt,
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";
import { packageVersion } from "../program.ts";
import { followNatsLink, healthListen, healthReport, startHealthServer } from "../health-server.ts";
import { readWorkerTuning } from "../worker-tuning.ts";
import { onShutdownSignal, PARENT_PID_ENV } from "../signals.ts";

/**
 * Tuning knobs read from the environment (tests and operators; unset = the
 * runtime's default). They pass through to `--replicas` children unchanged.
 *   SWARM_ACK_WAIT_MS        consumer ack_wait: a silent replica's task is redelivered after it (30000)
 *   SWARM_MAX_DELIVER        consumer max_deliver: deliveries of one attempt before it fails for good (5)
 *   SWARM_LEASE_MS           claim lease, renewed while a task runs; a dead replica's claim lapses after it (15000)
 *   SWARM_HEARTBEAT_MS       agent_heartbeat period (5000)
 *   SWARM_DRAIN_TIMEOUT_MS   on SIGTERM, how long in-flight tasks may finish before they are handed back (10000)
 *   SWARM_MODEL_RETRY_MS     first delay before a task whose model server is down is offered again, doubling (2000)
 *   SWARM_MAX_MODEL_CALLS    model calls per task before the agent must stop (24)
 *   SWARM_CHECKOUT_REUSE     0: reset every task checkout in full instead of trusting its last walk (1)
 * Security settings (docs/security.md), read by the replica:
 *   SWARM_SANDBOX            bwrap | none: sandbox of agents whose roster entry names none (default: bwrap if it works)
 *   SWARM_BWRAP_BIN          the bubblewrap binary (default: bwrap on PATH)
 *   NATS_NKEY / NATS_CREDS / NATS_TOKEN / NATS_USER+NATS_PASS   credentials (docs/operations.md)
 *   SWARM_NATS_INBOX_PREFIX  inbox prefix the worker's NATS user may subscribe on (e.g. _INBOX_builder)
 */
export { WorkerTuning, readWorkerTuning } from "../worker-tuning.ts";

interface WorkerFlags extends CommonFlags {
  agent: string;
  replicas: number;
  concurrency?: number;
}

export function registerWorkerCommand(program: Command): void {
  withCommonOptions(
    program
      .command("worker")
      .description("run replicas of one agent: pull its tasks, run them, report")
      .requiredOption("--agent <name>", "roster agent to serve")
      .option("--replicas <n>", "replica processes", positiveInt("--replicas"), 1)
      .option("--concurrency <n>", "tasks in flight per replica", positiveInt("--concurrency")),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  $ swarm worker --agent builder --replicas 3\n  $ swarm worker --agent tester --concurrency 4",
    )
    .action(async (flags: WorkerFlags) => {
      const common = resolveCommon(flags);
      const roster = await loadRoster(common.rosterPath);
      const agent = roster.agents.find((a) => a.name === flags.agent);
      if (!agent) {
        throw new BadInputError(
          `agent ${JSON.stringify(flags.agent)} is not in the roster (${roster.agents.map((a) => a.name).join(", ")})`,
        );
      }
      const tuning = readWorkerTuning();
      // A bad SWARM_WORKER_MODEL is a config error now, not a failed task later.
      parseModelSpec(agent.model ?? common.env.SWARM_WORKER_MODEL);
      // So is a sandbox this machine can't give (exit 2, before NATS is even asked).
      await checkSandbox(agent, process.env);
      if (flags.replicas > 1) {
        await superviseReplicas(flags);
        return;
      }
      const log = createLogger("worker", { agent: agent.name });
      const listen = healthListen(process.env);
      const nc = await connectBus({
        ...(await clientConnectOptions(common, `worker-${agent.name}`, {
          role: "worker",
          agent: agent.name,
        })),
        log,
      });
      const instance = newInstanceId();
      const replica = await startWorkerReplica({
        nc,
        agent,
        instance,
        concurrency: flags.concurrency ?? agent.concurrency ?? 1,
        workspaceRoot: common.workspaceRoot,
        defaultModel: common.env.SWARM_WORKER_MODEL,
        version: packageVersion(),
        log,
        ackWaitMs: tuning.SWARM_ACK_WAIT_MS,
        maxDeliver: tuning.SWARM_MAX_DELIVER,
        leaseMs: tuning.SWARM_LEASE_MS,
        heartbeatMs: tuning.SWARM_HEARTBEAT_MS,
        drainTimeoutMs: tuning.SWARM_DRAIN_TIMEOUT_MS,
        modelRetryBaseMs: tuning.SWARM_MODEL_RETRY_MS,
        maxModelCalls: tuning.SWARM_MAX_MODEL_CALLS,
        env: process.env,
      });
      let stopping = false;
      const link = followNatsLink(nc);
      const health = listen
        ? await startHealthServer({
            ...listen,
            log,
            report: () =>
              healthReport({
                role: "worker",
                agent: agent.name,
                instance,
                nats: link(),
                stopping,
                in_flight: replica.inFlight(),
                refused_events: replica.refusedEvents(),
              }),
          })
        : null;
      onShutdownSignal(async (signal) => {
        log.info({ signal }, "draining");
        stopping = true;
        await replica.stop(`received ${signal}`);
      });
      releaseStartupMemory();
      await replica.done;
      stopping = true;
      await replica.stop();
      await health?.close();
      await nc.drain();
    });
}

/** V8's `gc()` of `--expose-gc`, with the options its extension takes. */
type ExposedGc = (opts: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/**
 * One memory-reducing collection once the replica is up. Start-up (loading
 * the modules, connecting, provisioning) allocates fast enough that V8 grows
 * its young generation to the maximum, and a replica that then waits for
 * tasks would keep those pages resident for good: this gives them back
 * (about 10 MB per replica, docs/benchmarks.md section 6), and the heap grows
 * again when work comes. V8 offers no API for it but `gc()`, which
 * `--expose-gc` would put on every replica's global object: the flag is set
 * only while a fresh context fetches the function, then cleared.
 */
export function releaseStartupMemory(): void {
  setFlagsFromString("--expose-gc");
  let gc: ExposedGc | undefined;
  try {
    gc = runInNewContext("typeof gc === 'function' ? gc : undefined") as ExposedGc | undefined;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
}

/**
 * `--replicas N`: N separate processes, so one can die alone; restarted when
 * they crash. A replica that exits with "bad input" (exit 2) would fail the
 * same way on every restart, so that stops them all with the same code.
 */
async function superviseReplicas(flags: WorkerFlags): Promise<void> {
  // Only a supervising parent needs these, not every replica.
  const [{ selfCommand }, { Supervisor }] = await Promise.all([
    import("../../client/self-command.ts"),
    import("../supervisor.ts"),
  ]);
  const self = await selfCommand();
  const healthPortOf = replicaHealthPorts(healthListen(process.env), flags.replicas);
  const sup = new Supervisor();
  const log = createLogger("worker-supervisor", { agent: flags.agent });
  let badInput = false;
  let wake!: () => void;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  sup.on("event", (e) => {
    log.info(e, `replica ${e.type}`);
    if (e.type === "exited" && e.code === ExitCode.badInput) {
      badInput = true;
      wake();
    }
  });
  const passOn = [
    ...(flags.nats ? ["--nats", flags.nats] : []),
    ...(flags.workspace ? ["--workspace", flags.workspace] : []),
    ...(flags.roster ? ["--roster", flags.roster] : []),
    ...(flags.concurrency ? ["--concurrency", String(flags.concurrency)] : []),
  ];
  for (let i = 1; i <= flags.replicas; i++) {
    sup.start({
      name: `${flags.agent}#${i}`,
      command: self.command,
      args: [...self.args, "worker", "--agent", flags.agent, ...passOn],
      // Each replica stops by itself if this process is SIGKILLed, and has a health
      // port of its own (SWARM_HEALTH_PORT + i - 1), so that each is scraped.
      env: { [PARENT_PID_ENV]: String(process.pid), SWARM_HEALTH_PORT: healthPortOf(i) },
    });
  }
  onShutdownSignal(async () => wake());
  await stopped;
  await sup.stopAll();
  if (badInput) {
    throw new BadInputError(`a ${flags.agent} replica exited with bad input (its error is above)`);
  }
}

/**
 * Replica i's SWARM_HEALTH_PORT under `--replicas N`: the supervisor's port
 * + i - 1 (0 stays 0: each picks a free one), or none without a port.
 */
export function replicaHealthPorts(
  listen: { port: number } | null,
  replicas: number,
): (i: number) => string {
  if (!listen) return () => "";
  const base = listen.port;
  if (base !== 0 && base + replicas - 1 > 65535) {
    throw new BadInputError(
      `SWARM_HEALTH_PORT=${base} with --replicas ${replicas}: replica ports ${base}-${base + replicas - 1} ` +
        "go past 65535; choose a lower port",
    );
  }
  return (i) => String(base === 0 ? 0 : base + i - 1);
}
