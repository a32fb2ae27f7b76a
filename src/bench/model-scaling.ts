/**
 * Benchmark 4, model-bound scaling: every task is a real ReAct run of the
 * worker (createAgent + ChatOllama) against a fake model server that takes a
 * fixed time per call, two calls per task (a tool call, then the answer).
 * With S slots the ideal is S tasks per (2 × call time); the figure is
 * achieved ÷ ideal. Slots are one replica's `--concurrency`.
 */
import { startFakeModelServer } from "./fake-model-server.ts";
import { atLeast, type Figure, type Section } from "./results.ts";
import { modelWidePlan } from "./plans.ts";
import { ratePerSecond, summarize, type LatencySummary } from "./stats.ts";
import type { ProbeRecord } from "./event-probe.ts";
import { startHarness, treeCpuSeconds } from "./swarm-harness.ts";

export interface ModelScalingOptions {
  /** Slots of one replica (`--concurrency`). */
  slotCounts: number[];
  /** Extra layouts of the same slots over several replicas (e.g. 2 × 16): one process per core. */
  splits: Array<{ replicas: number; concurrency: number }>;
  /** Tasks per slot in the measured mission. */
  rounds: number;
  callMs: number;
  callsPerTask: number;
  /** Tasks of the warm-up mission (at most one per slot). */
  warmupTasks: number;
}

export interface ModelScalingPoint {
  slots: number;
  replicas: number;
  tasks: number;
  achieved: number;
  ideal: number;
  efficiency: number;
  /** Most model calls the fake server had in progress at once. */
  peakConcurrentCalls: number;
  /** CPU seconds the worker used per task (its ReAct run, tools, events). */
  workerCpuMsPerTask: number;
  /** Share of the window the worker process was on a CPU. */
  workerBusy: number;
  /** task_started → task_completed, per task (the model time is callsPerTask × callMs of it). */
  runMs: LatencySummary;
  /**
   * Share of the slots' time (slots × window) spent between a task's
   * task_started and its result: near 1 when the replica keeps its slots
   * full, so what is left of the ideal is the run time per task itself.
   */
  slotBusy: number;
}

/** task_started → task_completed of each task of a run (pure). */
export function runDurations(records: readonly ProbeRecord[]): number[] {
  const started = new Map<string, number>();
  const out: number[] = [];
  for (const r of records) {
    if (!r.taskId) continue;
    if (r.type === "task_started" && !started.has(r.taskId)) started.set(r.taskId, r.at);
    if (r.type === "task_completed") {
      const s = started.get(r.taskId);
      if (s !== undefined) out.push(r.at - s);
    }
  }
  return out;
}

/** The model env of a worker that talks to the fake server (spec `ollama:bench`). */
export function fakeModelEnv(url: string): Record<string, string> {
  return { SWARM_WORKER_MODEL: "ollama:bench", OLLAMA_HOST: url };
}

export async function modelScaling(opts: ModelScalingOptions): Promise<ModelScalingPoint[]> {
  const model = await startFakeModelServer({ callMs: opts.callMs });
  const h = await startHarness("model");
  const points: ModelScalingPoint[] = [];
  try {
    const layouts = [
      ...opts.slotCounts.map((slots) => ({ replicas: 1, concurrency: slots })),
      ...opts.splits,
    ];
    for (const { replicas, concurrency } of layouts) {
      const slots = replicas * concurrency;
      const workers = await h.startWorkers({
        replicas,
        concurrency,
        env: fakeModelEnv(model.url),
      });
      try {
        // Loads LangChain (lazily imported on the first model task) and warms the JIT.
        await h.runMission(
          `model-warmup-${replicas}x${concurrency}`,
          // Every replica loads LangChain on its first model task.
          modelWidePlan(Math.min(slots, opts.warmupTasks * replicas), "w"),
          120_000,
        );
        model.resetCounters();
        const tasks = slots * opts.rounds;
        const cpu0 = await treeCpuSeconds(workers.process.pid);
        const run = await h.runMission(
          `model-${replicas}x${concurrency}`,
          modelWidePlan(tasks),
          600_000,
        );
        const cpu1 = await treeCpuSeconds(workers.process.pid);
        const window = run.finishedAt - run.firstAssignedAt;
        const achieved = ratePerSecond(tasks, window);
        const ideal = slots / ((opts.callsPerTask * opts.callMs) / 1000);
        if (model.calls() !== tasks * opts.callsPerTask) {
          throw new Error(
            `expected ${tasks * opts.callsPerTask} model calls, the fake server answered ${model.calls()}`,
          );
        }
        const runs = runDurations(run.records);
        points.push({
          slots,
          replicas,
          tasks,
          achieved,
          ideal,
          efficiency: achieved / ideal,
          peakConcurrentCalls: model.peakConcurrent(),
          workerCpuMsPerTask: ((cpu1 - cpu0) * 1000) / tasks,
          workerBusy: (cpu1 - cpu0) / (window / 1000),
          runMs: summarize(runs),
          slotBusy: runs.reduce((sum, ms) => sum + ms, 0) / (slots * window),
        });
      } finally {
        await workers.stop();
      }
    }
    return points;
  } finally {
    await h.close();
    await model.close();
  }
}

export function modelSection(
  points: ModelScalingPoint[],
  opts: ModelScalingOptions,
  durationMs: number,
): Section {
  const single = points.filter((p) => p.replicas === 1);
  const figures: Figure[] = points.map((p) => ({
    key:
      p.replicas === 1
        ? `model.slots.${p.slots}`
        : `model.split.${p.replicas}x${p.slots / p.replicas}`,
    name:
      p.replicas === 1
        ? `model-bound tasks/s, ${p.slots} slot${p.slots > 1 ? "s" : ""} (efficiency = ratio)`
        : `model-bound tasks/s, ${p.slots} slots as ${p.replicas} replicas × ${p.slots / p.replicas}`,
    value: p.achieved,
    unit: "tasks/s",
    reference: { label: "ideal: slots ÷ (2 × call time)", value: p.ideal, unit: "tasks/s" },
    ratio: p.efficiency,
    ...(p.slots === 32 && p.replicas === 1
      ? { target: atLeast(p.efficiency, 0.95, "efficiency") }
      : {}),
  }));
  const widest = single.at(-1);
  if (widest) {
    const modelMs = opts.callsPerTask * opts.callMs;
    figures.push({
      key: "model.run",
      name: `task_started → task_completed p50 at ${widest.slots} slots (per-task time)`,
      value: widest.runMs.p50,
      unit: "ms",
      reference: { label: "model time per task", value: modelMs, unit: "ms" },
      ratio: widest.runMs.p50 / modelMs,
    });
    figures.push({
      key: "model.cpu",
      name: `worker CPU per model-bound task at ${widest.slots} slots`,
      value: widest.workerCpuMsPerTask,
      unit: "ms",
    });
    figures.push({
      key: "model.busy",
      name: `share of the run the worker was on a CPU, at ${widest.slots} slots`,
      value: widest.workerBusy * 100,
      unit: "%",
    });
  }
  return {
    id: "model",
    title: "4. Model-bound scaling",
    durationMs,
    figures,
    notes: [
      `A fake Ollama server (src/bench/fake-model-server.ts) answers every chat call after ` +
        `${opts.callMs} ms: first a list_files tool call, then a final answer, so each task is ` +
        `${opts.callsPerTask} model calls through the worker's real createAgent + ChatOllama path ` +
        `(and one real tool call). One replica with \`--concurrency S\` (and, where marked, the ` +
        `same slots over several replicas); ${opts.rounds} tasks per ` +
        `slot in the measured mission, after a warm-up mission that loads LangChain.`,
      `Per slot count: ${points
        .map(
          (p) =>
            `${p.replicas > 1 ? `${p.replicas} × ${p.slots / p.replicas}` : p.slots} slots: ` +
            `${p.peakConcurrentCalls} calls in flight at most, slots busy ` +
            `${(p.slotBusy * 100).toFixed(0)}% of the time, ` +
            `task_started → task_completed p50 ${p.runMs.p50.toFixed(0)} ms / p99 ` +
            `${p.runMs.p99.toFixed(0)} ms (model time ${opts.callsPerTask * opts.callMs} ms), worker ` +
            `${p.workerCpuMsPerTask.toFixed(0)} ms CPU per task, busy ${(p.workerBusy * 100).toFixed(0)}% of a core`,
        )
        .join("; ")}.`,
    ],
  };
}
