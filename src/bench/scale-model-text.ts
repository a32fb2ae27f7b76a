/**
 * The scale model on paper (docs/benchmarks.md, issue 14 item 5), written
 * from the figures of the scale step (section 10) of the same run, so a run
 * keeps it true. Pure: sections in, Markdown paragraphs out.
 */
import type { Figure, Section } from "./results.ts";
import { limitsPassed, scaleModel, type ScaleInputs, type ScaleModel } from "./scale-model.ts";
import { formatNumber } from "./stats.ts";

/** Cores a nats-server (or each cluster node) is given in the capacity figures: a small VM. */
export const MODEL_NATS_CORES = 4;

/** The load multiples the model is asked about. */
export const LOAD_MULTIPLES = [10, 100, 1000] as const;

function figure(sections: readonly Section[], key: string): Figure | undefined {
  for (const s of sections) {
    const f = s.figures.find((x) => x.key === key);
    if (f) return f;
  }
  return undefined;
}

/** The model's inputs from a run's sections, or null when the scale step did not run. */
export function scaleInputs(sections: readonly Section[]): ScaleInputs | null {
  const v = (key: string) => figure(sections, key)?.value;
  const baseline = v("scale.orchestrators.1.throughput");
  const workerMs = v("scale.orchestrators.1.cpu.workers");
  const natsMs = v("scale.orchestrators.1.cpu.nats");
  if (baseline === undefined || workerMs === undefined || natsMs === undefined) return null;
  const orchestratorMs = [1, 2, 4, 8, 16]
    .map((n) => ({ orchestrators: n, msPerTask: v(`scale.orchestrators.${n}.cpu.orchestrators`) }))
    .filter((p): p is { orchestrators: number; msPerTask: number } => p.msPerTask !== undefined);
  const nodes = [1, 2, 3]
    .map((i) => v(`scale.cluster.cpu.nats.node${i}`))
    .filter((x): x is number => x !== undefined);
  // Section 4's 32-slot figure when it ran; else the ideal of 32 slots of 2 × 200 ms calls.
  const model32 = v("model.slots.32");
  const fanReplicas = v("scale.fanout.replicas");
  const fanNats = v("scale.fanout.cpu.nats");
  const fanWorkers = v("scale.fanout.cpu.workers");
  return {
    baselineTasksPerSecond: baseline,
    orchestratorMs,
    workerMs,
    natsMs,
    clusterNodeMs: nodes.length ? nodes : null,
    natsCores: MODEL_NATS_CORES,
    modelReplicaTasksPerSecond: model32 ?? 32 / 0.4,
    baselineReplicas: v("scale.orchestrators.replicas") ?? 1,
    fanout:
      fanReplicas !== undefined && fanNats !== undefined && fanWorkers !== undefined
        ? { replicas: fanReplicas, natsMs: fanNats, workerMs: fanWorkers }
        : null,
  };
}

/** Orchestrators needed to carry `load` tasks/s, or null when no number of them does. */
export function orchestratorsFor(model: ScaleModel, load: number, max = 10_000): number | null {
  if (model.orchestratorCeiling !== null && load >= model.orchestratorCeiling) return null;
  for (let n = 1; n <= max; n++) if (model.orchestrators(n) >= load) return n;
  return null;
}

/** The coordination fan-in part of nats-server's CPU per task at R replicas, in ms. */
const fanIn = (m: ScaleModel, replicas: number) => m.perReplica.natsMs * replicas;

const n0 = (x: number) => Math.round(x).toLocaleString("en");
const rate = (x: number | null) =>
  x === null || !Number.isFinite(x) ? "no limit" : `${n0(x)} tasks/s`;

export function scaleModelText(sections: readonly Section[]): string[] {
  const i = scaleInputs(sections);
  if (!i) return [];
  const m = scaleModel(i);
  const L = i.baselineTasksPerSecond;
  const { sharedMs, divisibleMs } = m.orchestratorsShared;
  const orchLine = i.orchestratorMs
    .map((p) => `${formatNumber(p.msPerTask)} ms with ${p.orchestrators}`)
    .join(", ");
  const node = i.clusterNodeMs;
  const fanP99 = figure(sections, "scale.fanout.p99");
  const fanCov = figure(sections, "scale.fanout.cov");
  const fanTp = figure(sections, "scale.fanout.throughput");
  const out: string[] = [];
  out.push(
    `Every figure here is derived from the CPU that each part spent per task in section 10 of ` +
      `this run (CPU seconds from /proc/<pid>/stat over the measured window ÷ tasks), divided ` +
      `into a core: a part that spends c ms of CPU per task carries at most 1000 / c tasks/s on ` +
      `one core. "Today's load" is what one orchestrator on one nats-server carried in section ` +
      `10 (a): **${n0(L)} tasks/s** of no-op tasks. The costs were measured with every process ` +
      `on the same shared two-core machine, so they include the cost of contention (cache, ` +
      `context switches); on dedicated cores they would be lower, so the capacities below are ` +
      `conservative. A no-op task (\`run: []\`) is the swarm's own cost per task; a real task ` +
      `adds the model's time and the worker's CPU for it, which only moves load to the workers.`,
  );
  out.push(
    `**Per task.** Orchestrators (all together): ${orchLine}. Fitted as N × shared + ` +
      `divisible (every orchestrator follows and checks every event of SQUAD_EVENTS, folds it ` +
      `into its book and into the mission view, and writes the view (compare-and-set: every ` +
      `orchestrator writes every mission's); only the lease holder steps the mission and ` +
      `publishes its dispatches): shared ${formatNumber(sharedMs)} ms per orchestrator, ` +
      `divisible ${formatNumber(divisibleMs)} ms. Workers: ${formatNumber(i.workerMs)} ms. ` +
      `nats-server: ${formatNumber(i.natsMs)} ms on one server` +
      (node
        ? `; on the R3 cluster ${node.map((x, k) => `n${k + 1} ${formatNumber(x)} ms`).join(", ")} ` +
          `(${formatNumber(node.reduce((a, b) => a + b, 0) / i.natsMs)}× the single server's in all)`
        : "") +
      `.`,
  );
  const fewN = [2, 4, 8].map((n) => `${n}: ${rate(m.orchestrators(n))}`).join(", ");
  out.push(
    `**Capacities.** One orchestrator (one event loop: one core at most): ` +
      `${rate(m.orchestrator)}. N orchestrators, each on its own core: ${fewN}; ` +
      (m.orchestratorCeiling !== null
        ? `no number of them passes ${rate(m.orchestratorCeiling)}, because each one reads every ` +
          `event. `
        : `the fit finds no shared part, so they add up. `) +
      `One nats-server: ${rate(m.natsPerCore)} per core of its CPU, ${rate(m.nats)} with ` +
      `${i.natsCores} cores (it is multi-threaded, but every write to one stream is ordered by ` +
      `that stream's one leader, so a single SQUAD_TASKS or SQUAD_EVENTS stream may not use ` +
      `every core: an upper bound, not measured at that size). ` +
      (m.cluster !== null
        ? `One R3 cluster (${i.natsCores} cores a node, limited by its busiest node, where the ` +
          `leaders are): ${rate(m.cluster)}: replication makes a cluster carry less than one ` +
          `server, not more; it buys surviving a node, not throughput. `
        : "") +
      `Workers: ${formatNumber(m.workerCoresPer1000)} cores per 1,000 no-op tasks/s, added ` +
      `freely as replicas. One consumer: ` +
      (fanTp && fanCov && fanP99
        ? `measured serving ${i.fanout?.replicas ?? "its"} replicas at ` +
          `${formatNumber(fanTp.value)} tasks/s (tasks per replica: coefficient of variation ` +
          `${formatNumber(fanCov.value)}; dispatch p99 ${formatNumber(fanP99.value)} ms, mostly ` +
          `the queue: every task was ready at once); `
        : "") +
      (i.fanout
        ? `each replica adds ${formatNumber(m.perReplica.natsMs * 1000)} µs of nats-server CPU ` +
          `and ${formatNumber(m.perReplica.workerMs * 1000)} µs of worker CPU to every task ` +
          `(from ${i.baselineReplicas} to ${i.fanout.replicas} replicas: ` +
          `${formatNumber(i.natsMs)} → ${formatNumber(i.fanout.natsMs)} ms and ` +
          `${formatNumber(i.workerMs)} → ${formatNumber(i.fanout.workerMs)} ms per task), ` +
          `because every replica subscribes to squad.coordination, which carries every task ` +
          `event, and drops what it does not act on only after the server has delivered it. `
        : "") +
      `So one nats-server of ${i.natsCores} cores keeps about ` +
      `${n0(m.replicasPerConsumer.noop)} replicas of no-op tasks busy (each doing ` +
      `${rate(1000 / i.workerMs)} on a core) or ${n0(m.replicasPerConsumer.model)} model-bound ` +
      `replicas of 32 slots (${formatNumber(i.modelReplicaTasksPerSecond)} tasks/s each` +
      `${figure(sections, "model.slots.32") ? ", section 4" : ", the ideal of 2 × 200 ms calls"})` +
      (m.perReplica.natsMs > 0
        ? `: R replicas cost it R × rate × (${formatNumber(m.perReplica.natsBaseMs)} ms + ` +
          `${formatNumber(m.perReplica.natsMs * 1000)} µs × R) of CPU per second; at ` +
          `${n0(m.replicasPerConsumer.model)} replicas the fan-in is ` +
          `${n0((100 * fanIn(m, m.replicasPerConsumer.model)) / (m.perReplica.natsBaseMs + fanIn(m, m.replicasPerConsumer.model)))}% ` +
          `of the server's cost per task, and it grows with every replica added, where the ` +
          `consumer's own cost per delivery does not. What moves it is more subjects: mission ` +
          `ends and approvals on a subject of their own (or one per agent), so that a replica ` +
          `receives only what it acts on.`
        : "."),
  );
  const rows = [
    "| load | tasks/s | orchestrators needed | nats-server cores (one server) | busiest R3 node cores | worker cores | limits passed (first first) |",
    "|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const k of [1, ...LOAD_MULTIPLES]) {
    const load = L * k;
    const need = orchestratorsFor(m, load);
    const passed = limitsPassed(m, load);
    rows.push(
      `| ${k}× | ${n0(load)} | ${need === null ? "none suffices" : need} | ` +
        `${formatNumber((load * i.natsMs) / 1000)} | ` +
        `${node ? formatNumber((load * Math.max(...node)) / 1000) : "n/a"} | ` +
        `${formatNumber((load * i.workerMs) / 1000)} | ` +
        `${passed.length ? passed.map((l) => l.part).join("; ") : "none"} |`,
    );
  }
  out.push(rows.join("\n"));
  const order = m.limits
    .filter((l) => l.tasksPerSecond !== null)
    .map((l) => `${l.part} at ${rate(l.tasksPerSecond)}: ${l.remedy}`);
  out.push(
    `**What gives out first, and what moves it** (in the order the load meets them):\n\n` +
      order.map((o, k) => `${k + 1}. ${o}.`).join("\n"),
  );
  out.push(
    `**How far to trust it.** Linear in the load, from one run of ${n0(L)} tasks/s on two shared ` +
      `cores: it leaves out what grows with the number of clients rather than tasks (each ` +
      `replica's heartbeats, its idle pull requests, each orchestrator's and replica's KV ` +
      `watches), a stream leader's single write path, and the disk (the stores were on this ` +
      `machine's temp dir). The per-replica cost is a slope between two runs that differ in ` +
      `more than the replica count (one 1,280-task mission in one process against twenty ` +
      `100-task missions on four processes), so it is an estimate. It does say which part to watch: the orchestrators' shared read of every ` +
      `event puts a ceiling on adding orchestrators that only partitioning the events lifts, ` +
      `and R3 replication costs nats-server CPU on every node.`,
  );
  return out;
}
