/**
 * Many worker replicas of one agent in one process, for the scale benchmark's
 * fan-out (src/bench/scale.ts): `node src/bench/replica-pool.ts <replicas>
 * <concurrency>`. Each replica is a real startWorkerReplica with a NATS
 * connection of its own, so nats-server sees as many clients and waiting pull
 * requests on the shared consumer as it would from as many `swarm worker`
 * processes; what they share is this process's heap and event loop, which
 * keeps 64 replicas in a few hundred MB instead of 64 Node processes (about
 * 80 MB each idle, docs/benchmarks.md section 6). Prints "pool ready" once
 * every replica pulls, and stops them all on SIGTERM.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readEnv } from "../config.ts";
import { createLogger } from "../log.ts";
import { newInstanceId } from "../workers/instance-id.ts";
import { loadRoster } from "../workers/roster.ts";
import { startWorkerReplica, type WorkerReplica } from "../workers/worker-replica.ts";
import { BENCH_AGENT } from "./plans.ts";

async function main(): Promise<void> {
  const replicas = Number(process.argv[2]);
  const concurrency = Number(process.argv[3] ?? 1);
  if (!(replicas >= 1 && concurrency >= 1)) {
    throw new Error("usage: replica-pool.ts <replicas> <concurrency>");
  }
  const env = readEnv(process.env);
  const roster = await loadRoster(undefined, process.env);
  const agent = roster.agents.find((a) => a.name === BENCH_AGENT);
  if (!agent) throw new Error(`agent ${BENCH_AGENT} is not in the roster`);
  const log = createLogger("replica-pool", { agent: agent.name });
  const started: Array<{ nc: NatsConnection; replica: WorkerReplica }> = [];
  // One at a time: the first provisions the consumer, the others find it.
  for (let i = 0; i < replicas; i++) {
    const nc = await connect({ servers: env.NATS_URL, name: `bench-pool-${i + 1}` });
    const replica = await startWorkerReplica({
      nc,
      agent,
      instance: newInstanceId(),
      concurrency,
      workspaceRoot: env.SWARM_WORKSPACE,
      defaultModel: env.SWARM_WORKER_MODEL,
      version: "bench",
      log,
      env: process.env,
    });
    started.push({ nc, replica });
  }
  log.info({ replicas, concurrency }, "pool ready");
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(started.map(({ replica }) => replica.stop("pool stopping")));
    await Promise.all(started.map(({ nc }) => nc.drain().catch(() => undefined)));
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
