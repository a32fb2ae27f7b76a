/**
 * Benchmark 2, dispatch latency: `task_assigned` published → `task_started`
 * seen, with an idle worker waiting. The mission is a chain of no-op tasks
 * that run nothing (`run: []`: an instant task, so no process start competes
 * for the CPU with the dispatch being measured), each depending on the one
 * before, so there is exactly one task in flight and every dispatch meets an
 * idle replica: the figure is the dispatch path, never queueing behind other
 * tasks. Both times are taken by one probe (a core subscription on `squad.>`).
 */
import { atMost, type Section } from "./results.ts";
import type { RawFigures } from "./raw-jetstream.ts";
import { noopChainPlan, noopRun, type NoopKind } from "./plans.ts";
import { ratio, summarize, type LatencySummary } from "./stats.ts";
import { startHarness, treeCpuSeconds, type MissionRun } from "./swarm-harness.ts";

export interface DispatchOptions {
  /** Samples in all: missions of `chainLength` chained tasks, one after another. */
  tasks: number;
  chainLength: number;
  warmupTasks: number;
  /** The chained tasks: `empty` (`run: []`, the default) or `shell` (`run: ["true"]`). */
  kind?: NoopKind;
}

export interface DispatchFigures {
  /** task_assigned → task_started (the worker side). */
  assignedToStarted: LatencySummary;
  /** task_completed of one task → task_assigned of the next (the orchestrator's hop). */
  resultToNextAssigned: LatencySummary;
  /** Whole chain ÷ tasks: one task's full cycle. */
  cycleMs: number;
  /** CPU seconds used during the chain by the orchestrator and the worker. */
  cpu: { orchestrator: number; worker: number; seconds: number };
}

/** Pairs up a chain mission's events into the two latencies (pure). */
export function chainLatencies(run: Pick<MissionRun, "records">): {
  assignedToStarted: number[];
  resultToNextAssigned: number[];
} {
  const assigned = new Map<string, number>();
  const started = new Map<string, number>();
  const completed = new Map<string, number>();
  const order: string[] = [];
  for (const r of run.records) {
    if (!r.taskId) continue;
    if (r.type === "task_assigned" && !assigned.has(r.taskId)) {
      assigned.set(r.taskId, r.at);
      order.push(r.taskId);
    } else if (r.type === "task_started" && !started.has(r.taskId)) {
      started.set(r.taskId, r.at);
    } else if (r.type === "task_completed" && !completed.has(r.taskId)) {
      completed.set(r.taskId, r.at);
    }
  }
  const assignedToStarted: number[] = [];
  const resultToNextAssigned: number[] = [];
  order.forEach((id, i) => {
    const a = assigned.get(id)!;
    const s = started.get(id);
    if (s !== undefined) assignedToStarted.push(s - a);
    const prev = order[i - 1];
    const done = prev === undefined ? undefined : completed.get(prev);
    if (done !== undefined) resultToNextAssigned.push(a - done);
  });
  return { assignedToStarted, resultToNextAssigned };
}

export async function dispatchLatency(opts: DispatchOptions): Promise<DispatchFigures> {
  const kind = opts.kind ?? "empty";
  const h = await startHarness("dispatch");
  try {
    // A shell step's sandbox does not touch assigned → started; without it the chain is shorter.
    const workers = await h.startWorkers({
      replicas: 1,
      concurrency: 1,
      env: { SWARM_SANDBOX: "none" },
    });
    await h.runMission("dispatch-warmup", noopChainPlan(opts.warmupTasks, kind), 120_000);
    const cpu0 = await Promise.all([
      treeCpuSeconds(h.orchestrator.pid),
      treeCpuSeconds(workers.process.pid),
    ]);
    const lat = { assignedToStarted: [] as number[], resultToNextAssigned: [] as number[] };
    let chainMs = 0;
    for (let done = 0, n = 1; done < opts.tasks; n++) {
      const length = Math.min(opts.chainLength, opts.tasks - done);
      const run = await h.runMission(`dispatch-chain-${n}`, noopChainPlan(length, kind), 600_000);
      const one = chainLatencies(run);
      if (one.assignedToStarted.length !== length) {
        throw new Error(
          `saw ${one.assignedToStarted.length} assigned/started pairs for ${length} tasks`,
        );
      }
      lat.assignedToStarted.push(...one.assignedToStarted);
      lat.resultToNextAssigned.push(...one.resultToNextAssigned);
      chainMs += run.finishedAt - run.firstAssignedAt;
      done += length;
    }
    const cpu1 = await Promise.all([
      treeCpuSeconds(h.orchestrator.pid),
      treeCpuSeconds(workers.process.pid),
    ]);
    const seconds = chainMs / 1000;
    return {
      assignedToStarted: summarize(lat.assignedToStarted),
      resultToNextAssigned: summarize(lat.resultToNextAssigned),
      cycleMs: chainMs / opts.tasks,
      cpu: { orchestrator: cpu1[0] - cpu0[0], worker: cpu1[1] - cpu0[1], seconds },
    };
  } finally {
    await h.close();
  }
}

export function dispatchSection(
  d: DispatchFigures,
  raw: RawFigures | null,
  opts: DispatchOptions,
  durationMs: number,
): Section {
  const ref = (p: "p50" | "p99") =>
    raw
      ? {
          reference: {
            label: `raw publish → pull → ack ${p}`,
            value: raw.roundTrip[p],
            unit: "ms" as const,
          },
          ratio: ratio(d.assignedToStarted[p], raw.roundTrip[p]),
        }
      : {};
  const busy = (s: number) => `${((s / d.cpu.seconds) * 100).toFixed(0)}% of one core`;
  const kind = opts.kind ?? "empty";
  return {
    id: "dispatch",
    title: "2. Dispatch latency",
    durationMs,
    figures: [
      {
        key: "dispatch.p50",
        name: "task_assigned → task_started, p50",
        value: d.assignedToStarted.p50,
        unit: "ms",
        ...ref("p50"),
        target: atMost(d.assignedToStarted.p50, 2, "ms"),
      },
      {
        key: "dispatch.p99",
        name: "task_assigned → task_started, p99",
        value: d.assignedToStarted.p99,
        unit: "ms",
        ...ref("p99"),
        target: atMost(d.assignedToStarted.p99, 10, "ms"),
      },
      {
        key: "dispatch.hop.p50",
        name: "task_completed → next task_assigned (orchestrator hop), p50",
        value: d.resultToNextAssigned.p50,
        unit: "ms",
      },
      {
        key: "dispatch.hop.p99",
        name: "task_completed → next task_assigned (orchestrator hop), p99",
        value: d.resultToNextAssigned.p99,
        unit: "ms",
      },
      {
        key: "dispatch.cycle",
        name: "one chained no-op task, assigned to the next assigned (mean)",
        value: d.cycleMs,
        unit: "ms",
      },
    ],
    notes: [
      `${opts.tasks} no-op tasks (\`${JSON.stringify(noopRun(kind))}\`${kind === "empty" ? ": nothing runs" : ""}) ` +
        `in missions of ${opts.chainLength}, each ` +
        `task depending on the one before (after a ${opts.warmupTasks}-task warm-up), on one ` +
        `replica with one slot and \`SWARM_SANDBOX=none\`: ` +
        `every task_assigned meets an idle, waiting worker, so the figure has no queueing in it. ` +
        `No model is involved. ` +
        (kind === "empty"
          ? `The tasks are instant on purpose: a shell step (\`run: ["true"]\`) would add a ` +
            `process start per task whose CPU competes with the dispatch being measured; its ` +
            `cost is in section 3.`
          : `Each task runs one shell command; its cost is in section 3.`),
      `Between the two events the worker decodes and validates the event, claims the attempt in ` +
        `KV (a round trip) and publishes task_started (a JetStream publish); the raw reference ` +
        `has only the delivery and one ackAck round trip.`,
      `Each mission here has ${opts.chainLength} tasks; in a mission of n tasks every hop also ` +
        `pays one mission-machine step, whose cost does not grow with n (the step figures in ` +
        `section 3).`,
      `CPU during the chain: orchestrator ${d.cpu.orchestrator.toFixed(1)} s ` +
        `(${busy(d.cpu.orchestrator)}), worker${kind === "shell" ? " with its shell steps" : ""} ` +
        `${d.cpu.worker.toFixed(1)} s ` +
        `(${busy(d.cpu.worker)}) over ${d.cpu.seconds.toFixed(1)} s.`,
    ],
  };
}
