/**
 * The arithmetic of the scale benchmark (src/bench/scale.ts), pure: how tasks
 * spread over replicas, each task's dispatch delay, and the scale model on
 * paper: from the CPU each part spends per task, how many tasks/s one
 * orchestrator, one nats-server and one R3 cluster carry, and which part
 * gives out first at 10×, 100× and 1,000× the measured load.
 */
import type { ProbeRecord } from "./event-probe.ts";

export interface Fairness {
  replicas: number;
  min: number;
  max: number;
  mean: number;
  /** Coefficient of variation: standard deviation ÷ mean (0 = perfectly even). */
  cov: number;
}

/** Spread of tasks over `replicas` replicas; a replica missing from `counts` had none. */
export function fairness(counts: ReadonlyMap<string, number>, replicas: number): Fairness {
  if (replicas < counts.size) {
    throw new RangeError(`${counts.size} replicas did work, but only ${replicas} were started`);
  }
  const all = [...counts.values(), ...Array<number>(replicas - counts.size).fill(0)];
  if (all.length === 0) throw new RangeError("fairness of no replicas");
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length;
  return {
    replicas: all.length,
    min: Math.min(...all),
    max: Math.max(...all),
    mean,
    cov: mean === 0 ? 0 : Math.sqrt(variance) / mean,
  };
}

const taskKey = (r: ProbeRecord) => `${r.missionId}/${r.taskId}`;

/** Tasks started per replica (`task_started.worker`), each task counted once (its first start). */
export function tasksPerWorker(records: readonly ProbeRecord[]): Map<string, number> {
  const seen = new Set<string>();
  const out = new Map<string, number>();
  for (const r of records) {
    if (r.type !== "task_started" || !r.taskId || !r.worker) continue;
    const k = taskKey(r);
    if (seen.has(k)) continue;
    seen.add(k);
    out.set(r.worker, (out.get(r.worker) ?? 0) + 1);
  }
  return out;
}

/**
 * task_assigned → task_started of every task (first of each), over any
 * number of missions at once: with more tasks ready than free slots, this
 * includes the wait for a slot.
 */
export function dispatchDelays(records: readonly ProbeRecord[]): number[] {
  const assigned = new Map<string, number>();
  const out: number[] = [];
  const started = new Set<string>();
  for (const r of records) {
    if (!r.taskId) continue;
    const k = taskKey(r);
    if (r.type === "task_assigned" && !assigned.has(k)) assigned.set(k, r.at);
    else if (r.type === "task_started" && !started.has(k)) {
      started.add(k);
      const a = assigned.get(k);
      if (a !== undefined) out.push(r.at - a);
    }
  }
  return out;
}

/**
 * Every orchestrator reads and checks every event (each follows all of
 * SQUAD_EVENTS and folds it into the book and the mission view), but only
 * the lease holder steps the mission and publishes its dispatches. So the
 * orchestrators' CPU per task with N of them is N × shared + divisible:
 * a least-squares line through the measured points, each part at least 0.
 */
export function splitOrchestratorCost(
  points: ReadonlyArray<{ orchestrators: number; msPerTask: number }>,
): { sharedMs: number; divisibleMs: number } {
  if (points.length === 0) throw new RangeError("no orchestrator points");
  if (points.length === 1 || new Set(points.map((p) => p.orchestrators)).size === 1) {
    const mean = points.reduce((a, p) => a + p.msPerTask / p.orchestrators, 0) / points.length;
    return { sharedMs: mean, divisibleMs: 0 };
  }
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.orchestrators, 0) / n;
  const my = points.reduce((a, p) => a + p.msPerTask, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.orchestrators - mx) * (p.msPerTask - my), 0);
  const sxx = points.reduce((a, p) => a + (p.orchestrators - mx) ** 2, 0);
  let shared = sxy / sxx;
  let divisible = my - shared * mx;
  if (shared < 0) {
    shared = 0;
    divisible = my;
  } else if (divisible < 0) {
    divisible = 0;
    shared =
      points.reduce((a, p) => a + p.msPerTask, 0) / points.reduce((a, p) => a + p.orchestrators, 0);
  }
  return { sharedMs: shared, divisibleMs: divisible };
}

export interface ScaleInputs {
  /** "Today's load": tasks/s of the 1-orchestrator, single-server run. */
  baselineTasksPerSecond: number;
  /** Orchestrators' CPU per task (all of them together), per orchestrator count. */
  orchestratorMs: Array<{ orchestrators: number; msPerTask: number }>;
  /** Worker CPU per task (one-orchestrator run). */
  workerMs: number;
  /** nats-server CPU per task, one server. */
  natsMs: number;
  /** nats-server CPU per task of each node of the R3 cluster (null: not measured). */
  clusterNodeMs: number[] | null;
  /** Cores a nats-server (or each cluster node) is assumed to have for the capacity figures. */
  natsCores: number;
  /** A model-bound replica's tasks/s (slots ÷ seconds per task), for the replicas-per-consumer figure. */
  modelReplicaTasksPerSecond: number;
  /** Worker replicas of the baseline run. */
  baselineReplicas: number;
  /** The fan-out run: many replicas on one consumer, CPU per task (null: not measured). */
  fanout: { replicas: number; natsMs: number; workerMs: number } | null;
}

/**
 * What one more replica costs per task: every replica subscribes to
 * squad.coordination, which carries every task event, so nats-server
 * delivers each event once per replica (the replica drops the types it does
 * not act on). From the baseline run and the fan-out run: the slope between
 * them, at least 0.
 */
export function perReplicaCost(
  i: Pick<ScaleInputs, "baselineReplicas" | "natsMs" | "workerMs" | "fanout">,
): {
  natsMs: number;
  workerMs: number;
  /** nats-server CPU per task with no replica at all (the intercept). */
  natsBaseMs: number;
} {
  const f = i.fanout;
  if (!f || f.replicas <= i.baselineReplicas)
    return { natsMs: 0, workerMs: 0, natsBaseMs: i.natsMs };
  const dr = f.replicas - i.baselineReplicas;
  const natsMs = Math.max(0, (f.natsMs - i.natsMs) / dr);
  return {
    natsMs,
    workerMs: Math.max(0, (f.workerMs - i.workerMs) / dr),
    natsBaseMs: Math.max(0, i.natsMs - natsMs * i.baselineReplicas),
  };
}

/**
 * Replicas that one nats-server of `cores` cores can keep busy when each
 * does `rate` tasks/s and a task costs it base + perReplica × R ms:
 * R × rate × (base + perReplica × R) = 1000 × cores, solved for R.
 */
export function replicasServed(
  base: number,
  perReplica: number,
  rate: number,
  cores: number,
): number {
  const budget = 1000 * cores;
  if (perReplica <= 0) return base > 0 ? budget / (base * rate) : Infinity;
  const a = perReplica * rate;
  const b = base * rate;
  return (-b + Math.sqrt(b * b + 4 * a * budget)) / (2 * a);
}

export interface Limit {
  part: string;
  /** Tasks/s at which it gives out, or null for "no limit from this part". */
  tasksPerSecond: number | null;
  /** What moves it. */
  remedy: string;
}

export interface ScaleModel {
  orchestrator: number;
  orchestratorsShared: { sharedMs: number; divisibleMs: number };
  /** Tasks/s of N orchestrators, each on a core of its own. */
  orchestrators: (n: number) => number;
  /** What no number of orchestrators passes (every one reads every event). */
  orchestratorCeiling: number | null;
  natsPerCore: number;
  nats: number;
  cluster: number | null;
  /** Worker cores per 1,000 tasks/s of no-op tasks. */
  workerCoresPer1000: number;
  /** Replicas one consumer (on one server of natsCores) can keep busy: no-op and model-bound. */
  replicasPerConsumer: { noop: number; model: number };
  perReplica: ReturnType<typeof perReplicaCost>;
  /** The limits in the order they are met as the load grows. */
  limits: Limit[];
}

const perCore = (ms: number) => (ms > 0 ? 1000 / ms : Infinity);

export function scaleModel(i: ScaleInputs): ScaleModel {
  const split = splitOrchestratorCost(i.orchestratorMs);
  const orchestrators = (n: number) => perCore(split.sharedMs + split.divisibleMs / n);
  const orchestratorCeiling = split.sharedMs > 0 ? perCore(split.sharedMs) : null;
  const natsPerCore = perCore(i.natsMs);
  const nats = natsPerCore * i.natsCores;
  const cluster = i.clusterNodeMs?.length
    ? perCore(Math.max(...i.clusterNodeMs)) * i.natsCores
    : null;
  const noopReplica = perCore(i.workerMs);
  const perReplica = perReplicaCost(i);
  const limits: Limit[] = [
    {
      part: "one orchestrator (one event loop, one core)",
      // From the fit, like N of them: consistent with the ceiling below it.
      tasksPerSecond: orchestrators(1),
      remedy: "more orchestrators (the missions' leases spread them)",
    },
    {
      part: "any number of orchestrators (each reads and checks every event)",
      tasksPerSecond: orchestratorCeiling,
      remedy:
        "more stream subjects: events partitioned by mission shard (`squad.events.<shard>.>`) " +
        "so that each orchestrator follows only the shards whose missions it leases",
    },
    {
      part: `one nats-server (${i.natsCores} cores)`,
      tasksPerSecond: nats,
      remedy:
        "more streams: per-agent task streams and sharded event streams, their leaders " +
        "spread over the nodes of a cluster (R1 for throughput, R3 for surviving a node)",
    },
    ...(cluster !== null
      ? [
          {
            part: `one R3 cluster (${i.natsCores} cores a node, busiest node)`,
            tasksPerSecond: cluster,
            remedy:
              "more streams over more nodes (a stream's leader is one node), then a " +
              "super-cluster (gateways) of clusters, or leaf nodes that keep a site's " +
              "workers and their consumers local",
          },
        ]
      : []),
  ];
  limits.sort((a, b) => (a.tasksPerSecond ?? Infinity) - (b.tasksPerSecond ?? Infinity));
  return {
    orchestrator: limits.find((l) => l.part.startsWith("one orchestrator"))!.tasksPerSecond!,
    orchestratorsShared: split,
    orchestrators,
    orchestratorCeiling,
    natsPerCore,
    nats,
    cluster,
    workerCoresPer1000: i.workerMs,
    replicasPerConsumer: {
      noop: replicasServed(perReplica.natsBaseMs, perReplica.natsMs, noopReplica, i.natsCores),
      model: replicasServed(
        perReplica.natsBaseMs,
        perReplica.natsMs,
        i.modelReplicaTasksPerSecond,
        i.natsCores,
      ),
    },
    perReplica,
    limits,
  };
}

/** Which limits a load of `tasksPerSecond` is past, in the order they were passed. */
export function limitsPassed(model: ScaleModel, tasksPerSecond: number): Limit[] {
  return model.limits.filter((l) => l.tasksPerSecond !== null && l.tasksPerSecond < tasksPerSecond);
}
