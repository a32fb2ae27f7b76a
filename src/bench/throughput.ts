/**
 * Benchmark 3, throughput: no-op tasks per second end to end, through the
 * real orchestrator's mission machine: one mission of N independent tasks,
 * from the first task_assigned to mission_completed (which the orchestrator
 * emits once it has recorded every result). Two kinds of no-op task: `run: []`
 * (nothing runs: dispatch, claim and events only, the swarm itself; the
 * throughput target is judged on these) with 1, 2, 4 and 8 worker replicas,
 * and `run: ["true"]` (one shell command per task, a process each).
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { createMission, step } from "../orchestrator/mission-machine.ts";
import { runShell } from "../tools/shell.ts";
import { validatePlan } from "../orchestrator/plan-validation.ts";
import { atLeast, type Figure, type Section } from "./results.ts";
import type { RawFigures } from "./raw-jetstream.ts";
import { noopWidePlan, type NoopKind } from "./plans.ts";
import { ratePerSecond, ratio } from "./stats.ts";
import { startHarness, treeCpuSeconds } from "./swarm-harness.ts";

export interface ThroughputOptions {
  /** Replica counts of the `run: []` runs (the target is on 4). */
  replicaCounts: number[];
  concurrency: number;
  /** Tasks per `run: []` mission. */
  tasks: number;
  /** Replica counts of the `run: ["true"]` runs, in the worker's default sandbox. */
  shellReplicaCounts: number[];
  /** Tasks per `run: ["true"]` mission. */
  shellTasks: number;
  /** One more `run: []` run with 4 replicas and a mission this large (null: none): the mission-size effect. */
  largeMission: number | null;
  /** One more `run: ["true"]` run with 4 replicas and SWARM_SANDBOX=none: what the shell sandbox costs. */
  unsandboxedRun: boolean;
  /** Mission sizes for the in-process cost of one mission-machine step. */
  stepSizes: number[];
}

export interface ThroughputPoint {
  replicas: number;
  tasks: number;
  kind: NoopKind;
  /** Run with SWARM_SANDBOX=none (else the worker's default). */
  unsandboxed: boolean;
  tasksPerSecond: number;
  /** submit → mission_planned: parse, validate, record the plan. */
  planningMs: number;
  /** CPU seconds during the measured window. */
  cpu: { orchestrator: number; workers: number; nats: number; seconds: number };
}

export interface ThroughputFigures {
  points: ThroughputPoint[];
  /** Mean cost of one task_started step of the pure mission machine, by mission size. */
  stepCost: Array<{ tasks: number; microseconds: number }>;
  /** One `true` run step in this process: the worker's runShell, and a bare spawn. */
  runStep: { runShell: CostPerCall; bareSpawn: CostPerCall };
}

export interface CostPerCall {
  wallMs: number;
  cpuMs: number;
}

async function costPerCall(n: number, call: () => Promise<void>): Promise<CostPerCall> {
  await call();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  const c = process.cpuUsage(c0);
  return { wallMs: (performance.now() - t0) / n, cpuMs: (c.user + c.system) / 1000 / n };
}

/** In-process: what one `run: ["true"]` step costs the worker, and what a bare spawn costs. */
export async function measureRunStep(n: number): Promise<ThroughputFigures["runStep"]> {
  const cwd = os.tmpdir();
  return {
    runShell: await costPerCall(n, async () => {
      await runShell({ command: "true", cwd, timeoutMs: 10_000 });
    }),
    bareSpawn: await costPerCall(
      n,
      () =>
        new Promise<void>((resolve, reject) => {
          const c = spawn("/bin/bash", ["-c", "true"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
          c.stdout.resume();
          c.stderr.resume();
          c.once("error", reject);
          c.once("close", () => resolve());
        }),
    ),
  };
}

/** In-process: the pure mission machine's step cost for a mission of n tasks. */
export function measureStepCost(n: number): number {
  const v = validatePlan(noopWidePlan(n));
  if (!v.ok) throw new Error(`benchmark plan invalid: ${v.problems.join("; ")}`);
  let s = step(createMission({ missionId: "m-bench", startedAt: 0, budget: {} }), {
    type: "planned",
    now: 1,
    plan: v.plan,
    revision: 0,
  }).state;
  const ids = v.plan.waves[0]!.tasks.map((t) => t.id);
  const sample = ids.slice(0, Math.min(ids.length, 50));
  const t0 = performance.now();
  for (const id of sample) {
    s = step(s, { type: "task_started", now: 2, task_id: id, attempt: 1, worker: "w/1" }).state;
  }
  return ((performance.now() - t0) * 1000) / sample.length;
}

export async function throughput(opts: ThroughputOptions): Promise<ThroughputFigures> {
  const stepCost = opts.stepSizes.map((tasks) => ({
    tasks,
    microseconds: measureStepCost(tasks),
  }));
  const runStep = await measureRunStep(50);
  const h = await startHarness("throughput");
  const points: ThroughputPoint[] = [];
  try {
    const runs: Array<{ replicas: number; tasks: number; kind: NoopKind; unsandboxed: boolean }> = [
      ...opts.replicaCounts.map((replicas) => ({
        replicas,
        tasks: opts.tasks,
        kind: "empty" as const,
        unsandboxed: false,
      })),
      // Differs from the 4-replica run above only in mission size.
      ...(opts.largeMission
        ? [{ replicas: 4, tasks: opts.largeMission, kind: "empty" as const, unsandboxed: false }]
        : []),
      ...opts.shellReplicaCounts.map((replicas) => ({
        replicas,
        tasks: opts.shellTasks,
        kind: "shell" as const,
        unsandboxed: false,
      })),
      ...(opts.unsandboxedRun
        ? [{ replicas: 4, tasks: opts.shellTasks, kind: "shell" as const, unsandboxed: true }]
        : []),
    ];
    for (const { replicas, tasks, kind, unsandboxed } of runs) {
      const workers = await h.startWorkers({
        replicas,
        concurrency: opts.concurrency,
        ...(unsandboxed ? { env: { SWARM_SANDBOX: "none" } } : {}),
      });
      try {
        await h.runMission(
          `throughput-warmup-${replicas}-${kind}`,
          noopWidePlan(replicas * opts.concurrency, kind),
          120_000,
        );
        const cpuNow = () =>
          Promise.all([
            treeCpuSeconds(h.orchestrator.pid),
            treeCpuSeconds(workers.process.pid),
            treeCpuSeconds(h.natsPid),
          ]);
        const c0 = await cpuNow();
        const run = await h.runMission(
          `throughput-${replicas}-replicas-${tasks}-${kind}${unsandboxed ? "-unsandboxed" : ""}`,
          noopWidePlan(tasks, kind),
          600_000,
        );
        const c1 = await cpuNow();
        const completed = run.records.filter((r) => r.type === "task_completed").length;
        if (completed < tasks) throw new Error(`only ${completed} of ${tasks} tasks completed`);
        const window = run.finishedAt - run.firstAssignedAt;
        points.push({
          replicas,
          tasks,
          kind,
          unsandboxed,
          tasksPerSecond: ratePerSecond(tasks, window),
          planningMs: run.plannedAt - run.submittedAt,
          cpu: {
            orchestrator: c1[0] - c0[0],
            workers: c1[1] - c0[1],
            nats: c1[2] - c0[2],
            seconds: window / 1000,
          },
        });
      } finally {
        await workers.stop();
      }
    }
    return { points, stepCost, runStep };
  } finally {
    await h.close();
  }
}

export function throughputSection(
  t: ThroughputFigures,
  raw: RawFigures | null,
  opts: ThroughputOptions,
  durationMs: number,
): Section {
  const slots = (p: ThroughputPoint) =>
    `${p.replicas} replica${p.replicas > 1 ? "s" : ""} × ${opts.concurrency} slots`;
  const describe = (p: ThroughputPoint): { key: string; name: string } => {
    if (p.kind === "empty") {
      return p.tasks === opts.tasks
        ? {
            key: `throughput.replicas.${p.replicas}`,
            name: `no-op tasks/s (\`run: []\`), ${slots(p)}`,
          }
        : {
            key: `throughput.large.${p.tasks}`,
            name: `no-op tasks/s (\`run: []\`), ${slots(p)}, one ${p.tasks}-task mission`,
          };
    }
    return p.unsandboxed
      ? {
          key: "throughput.unsandboxed",
          name: `one shell command per task (\`run: ["true"]\`), tasks/s, ${slots(p)}, SWARM_SANDBOX=none`,
        }
      : {
          key: `throughput.shell.replicas.${p.replicas}`,
          name: `one shell command per task (\`run: ["true"]\`), tasks/s, ${slots(p)}`,
        };
  };
  const figures: Figure[] = t.points.map((p) => {
    const { key, name } = describe(p);
    return {
      key,
      name,
      value: p.tasksPerSecond,
      unit: "tasks/s",
      ...(raw
        ? {
            reference: { label: "raw JetStream throughput", value: raw.throughput, unit: "msg/s" },
            ratio: ratio(p.tasksPerSecond, raw.throughput),
          }
        : {}),
      // The target measures the swarm, not bash: it is judged on `run: []` tasks.
      ...(key === "throughput.replicas.4"
        ? { target: atLeast(p.tasksPerSecond, 2000, "tasks/s") }
        : {}),
    };
  });
  const planning = t.points
    .filter((p) => p.kind === "empty" && p.tasks === opts.tasks)
    .map((p) => p.planningMs);
  const large = t.points.find((p) => p.kind === "empty" && p.tasks !== opts.tasks);
  const cpuLines = t.points.map((p) => {
    const pct = (s: number) => `${((s / p.cpu.seconds) * 100).toFixed(0)}%`;
    const what =
      p.kind === "empty" ? "`run: []`" : `\`run: ["true"]\`${p.unsandboxed ? ", no sandbox" : ""}`;
    return (
      `${p.replicas} replica(s), ${p.tasks} tasks, ${what}, ` +
      `${p.cpu.seconds.toFixed(1)} s: orchestrator ${pct(p.cpu.orchestrator)} ` +
      `of a core, workers${p.kind === "shell" ? " with their shell steps" : ""} ` +
      `${pct(p.cpu.workers)}, nats-server ${pct(p.cpu.nats)}`
    );
  });
  return {
    id: "throughput",
    title: "3. Throughput, no-op tasks end to end",
    durationMs,
    figures: [
      ...figures,
      ...t.stepCost.map((s) => ({
        key: `throughput.step.${s.tasks}`,
        name: `one mission-machine step (task_started), mission of ${s.tasks} tasks`,
        value: s.microseconds,
        unit: "µs" as const,
      })),
      {
        key: "throughput.runstep",
        name: "one `true` run step through runShell, no sandbox (CPU in the caller)",
        value: t.runStep.runShell.cpuMs,
        unit: "ms",
        reference: {
          label: "bare child_process.spawn of bash -c true",
          value: t.runStep.bareSpawn.cpuMs,
          unit: "ms",
        },
        ratio: ratio(t.runStep.runShell.cpuMs, t.runStep.bareSpawn.cpuMs),
      },
      {
        key: "throughput.planning",
        name: `submit → mission_planned, ${opts.tasks}-task plan (mean)`,
        value: planning.reduce((a, b) => a + b, 0) / Math.max(1, planning.length),
        unit: "ms",
      },
      ...(large
        ? [
            {
              key: "throughput.planning.large",
              name: `submit → mission_planned, ${large.tasks}-task plan`,
              value: large.planningMs,
              unit: "ms" as const,
            },
          ]
        : []),
    ],
    notes: [
      `No-op tasks (\`run: []\`): one mission of ${opts.tasks} independent tasks that run ` +
        `nothing, per replica count, after a warm-up mission: each is dispatched, claimed in KV, ` +
        `started and reported like any task, so this measures the swarm itself; the throughput ` +
        `target is judged on these. One shell command per task (\`run: ["true"]\`): one mission ` +
        `of ${opts.shellTasks} tasks each running \`true\`, a process per task, in the worker's ` +
        `default sandbox (see the machine table) unless marked SWARM_SANDBOX=none. ` +
        `${opts.concurrency} slots per replica (\`--concurrency ${opts.concurrency}\`). Timed ` +
        `from the first task_assigned to mission_completed, which the orchestrator publishes ` +
        `after recording every result.`,
      `CPU used while measuring (share of one core; the machine has two): ${cpuLines.join("; ")}.`,
    ],
  };
}
