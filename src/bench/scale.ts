/**
 * Benchmark 10, past one orchestrator (issue 14, item 4), three parts in one run:
 * (a) 1, 2 and 4 orchestrators sharing the missions (leases) while M
 *     missions of T no-op tasks (`run: []`) run at once, on one worker
 *     group: total tasks/s and task_assigned → task_started;
 * (b) R replicas of one agent pulling from one consumer (in one process,
 *     src/bench/replica-pool.ts: R NATS connections, one heap): how evenly
 *     the tasks spread, and the dispatch delay;
 * (c) the same load as (a) with one orchestrator on a 3-node cluster with
 *     R3 streams (SWARM_STREAM_REPLICAS=3).
 * CPU of every part (orchestrators, workers, each nats-server from
 * /proc/<pid>/stat) is taken around each measured run, so the section can
 * give the CPU per task the scale model (scale-model-text.ts) is built on.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { newMissionId, submitMission } from "../client/submission.ts";
import { isMissionEndType } from "../schema/index.ts";
import type { ProbeRecord } from "./event-probe.ts";
import { BENCH_AGENT, briefText, noopWidePlan } from "./plans.ts";
import { residentMb, spawnSwarm, type SwarmProcess } from "./processes.ts";
import type { Figure, Section } from "./results.ts";
import { dispatchDelays, fairness, tasksPerWorker, type Fairness } from "./scale-model.ts";
import { median, ratePerSecond, ratio, summarize, type LatencySummary } from "./stats.ts";
import { startHarness, treeCpuSeconds, type Harness } from "./swarm-harness.ts";

const POOL_ENTRY = fileURLToPath(new URL("./replica-pool.ts", import.meta.url));

export interface ScaleOptions {
  orchestratorCounts: number[];
  missions: number;
  tasksPerMission: number;
  /** The worker group of (a) and (c): `swarm worker --replicas R --concurrency C`. */
  workers: { replicas: number; concurrency: number };
  fanout: { replicas: number; concurrency: number; tasksPerReplica: number };
  cluster: boolean;
  /** Rounds of (a) and (c), in alternating order (a drift of the machine's load weighs on all). */
  rounds: number;
}

export interface LoadRun {
  tasks: number;
  tasksPerSecond: number;
  dispatch: LatencySummary;
  seconds: number;
  /** CPU seconds of the run, by part; nats per server. */
  cpu: { orchestrators: number; workers: number; nats: number[] };
  /** Missions each orchestrator planned. */
  planned: number[];
  /** Each round's tasks/s (tasksPerSecond is their median). */
  rounds: number[];
  /** Every task's task_assigned → task_started (dispatch summarises them). */
  delays: number[];
}

export interface ScaleFigures {
  orchestrators: Array<{ orchestrators: number; run: LoadRun }>;
  fanout: {
    run: LoadRun;
    spread: Fairness;
    poolMb: number;
    /** One `swarm worker` replica process, idle, for comparison. */
    processMb: number;
  } | null;
  cluster: LoadRun | null;
}

const ms = (cpuSeconds: number, tasks: number) => (cpuSeconds * 1000) / tasks;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Every measured run must end within this: at least 25 tasks/s, plus a minute. */
const runTimeoutMs = (tasks: number) => 60_000 + tasks * 40;

async function cpuOf(pids: number[]): Promise<number[]> {
  return Promise.all(pids.map((p) => treeCpuSeconds(p)));
}

async function plannedCounts(orchestrators: SwarmProcess[]): Promise<number[]> {
  return Promise.all(
    orchestrators.map(
      async (o) =>
        (
          (await readFile(o.logPath, "utf8").catch(() => "")).match(/"msg":"mission planned"/g) ??
          []
        ).length,
    ),
  );
}

/**
 * Submits `missions` missions of `tasks` no-op tasks at once and waits for
 * every one to end; CPU of each part is taken just before and after.
 */
async function loadRun(
  h: Harness,
  label: string,
  missions: number,
  tasks: number,
  workerPid: number,
): Promise<LoadRun & { records: ProbeRecord[] }> {
  const p = h.probe;
  p.clear();
  const cpu = () =>
    Promise.all([
      cpuOf(h.orchestrators.map((o) => o.pid)),
      treeCpuSeconds(workerPid),
      cpuOf(h.natsPids),
    ]);
  const planned0 = await plannedCounts(h.orchestrators);
  const c0 = await cpu();
  const ids = new Set<string>();
  await Promise.all(
    Array.from({ length: missions }, async (_, i) => {
      const name = `${label}-${i + 1}`;
      const text = briefText(`bench: ${name}`, noopWidePlan(tasks, "empty"));
      const sourcePath = path.join(h.dir, "briefs", `${name}.md`);
      await writeFile(sourcePath, text);
      const missionId = newMissionId();
      ids.add(missionId);
      await submitMission(h.nc, { brief: text, sourcePath, missionId });
    }),
  );
  const ends: ProbeRecord[] = [];
  let scanned = 0;
  const timeoutMs = runTimeoutMs(missions * tasks);
  try {
    await p.waitUntil(
      (rs) => {
        for (; scanned < rs.length; scanned++) {
          const r = rs[scanned]!;
          if (
            r.missionId &&
            ids.has(r.missionId) &&
            isMissionEndType(r.type) &&
            r.subject === "squad.coordination"
          )
            ends.push(r);
        }
        return ends.length >= missions;
      },
      `${missions} missions of ${tasks} tasks to end`,
      timeoutMs,
    );
  } catch (err) {
    const done = p.records.filter((r) => r.type === "task_completed").length;
    throw new Error(
      `${label}: ${(err as Error).message} (${ends.length} ended, ${done} of ${missions * tasks} ` +
        `tasks completed)\norchestrator log:\n${await h.orchestrator.logTail(1500)}`,
      { cause: err },
    );
  }
  const c1 = await cpu();
  const failed = ends.find((e) => e.type !== "mission_completed");
  if (failed) throw new Error(`${label}: a mission ended ${failed.type}: ${failed.reason ?? ""}`);
  const records = p.records.filter((r) => r.missionId && ids.has(r.missionId));
  p.clear();
  const first = records.find((r) => r.type === "task_assigned");
  const last = Math.max(...ends.map((e) => e.at));
  if (!first) throw new Error(`${label}: no task_assigned seen`);
  const delays = dispatchDelays(records);
  const total = missions * tasks;
  if (delays.length !== total)
    throw new Error(`${label}: ${delays.length} assigned/started pairs for ${total} tasks`);
  const planned1 = await plannedCounts(h.orchestrators);
  const tasksPerSecond = ratePerSecond(total, last - first.at);
  return {
    tasks: total,
    tasksPerSecond,
    rounds: [tasksPerSecond],
    delays,
    dispatch: summarize(delays),
    seconds: (last - first.at) / 1000,
    cpu: {
      orchestrators: c1[0].reduce((a, b) => a + b, 0) - c0[0].reduce((a, b) => a + b, 0),
      workers: c1[1] - c0[1],
      nats: c1[2].map((c, i) => c - c0[2][i]!),
    },
    planned: planned1.map((n, i) => n - planned0[i]!),
    records,
  };
}

async function orchestratorRun(opts: ScaleOptions, n: number, cluster: boolean): Promise<LoadRun> {
  const h = await startHarness(cluster ? "scale-cluster" : `scale-${n}o`, {
    orchestrators: n,
    cluster,
  });
  try {
    const w = await h.startWorkers(opts.workers);
    // Warm-up: a mission per orchestrator, so that each has planned and dispatched once.
    await loadRun(h, "warmup", n, opts.workers.replicas * opts.workers.concurrency, w.process.pid);
    const { records: _records, ...run } = await loadRun(
      h,
      `load-${n}o${cluster ? "-r3" : ""}`,
      opts.missions,
      opts.tasksPerMission,
      w.process.pid,
    );
    return run;
  } finally {
    await h.close();
  }
}

async function fanoutRun(opts: ScaleOptions): Promise<NonNullable<ScaleFigures["fanout"]>> {
  const { replicas, concurrency, tasksPerReplica } = opts.fanout;
  const h = await startHarness("scale-fanout");
  let pool: SwarmProcess | null = null;
  try {
    const single = await h.startWorkers({ replicas: 1, concurrency });
    const processMb = (await residentMb(single.process.pid)) ?? NaN;
    await single.stop();
    const from = h.probe.records.length;
    pool = await spawnSwarm(
      [String(replicas), String(concurrency)],
      h.env(),
      path.join(h.dir, "replica-pool.log"),
      [],
      POOL_ENTRY,
    );
    const startMs = 60_000 + replicas * 3000;
    await pool.waitForLog(/"pool ready"/, startMs);
    await h.probe.waitUntil(
      (rs) =>
        rs.slice(from).filter((r) => r.type === "agent_online" && r.agent === BENCH_AGENT).length >=
        replicas,
      `${replicas} pooled replicas online`,
      30_000,
    );
    await loadRun(h, "fanout-warmup", 1, replicas * concurrency, pool.pid);
    const { records, ...run } = await loadRun(
      h,
      `fanout-${replicas}`,
      1,
      replicas * concurrency * tasksPerReplica,
      pool.pid,
    );
    const poolMb = (await residentMb(pool.pid)) ?? NaN;
    return { run, spread: fairness(tasksPerWorker(records), replicas), poolMb, processMb };
  } finally {
    await pool?.stop();
    await h.close();
  }
}

/** Rounds of one configuration as one run: tasks and CPU summed, the median round's tasks/s. */
export function combineRounds(runs: readonly LoadRun[]): LoadRun {
  if (runs.length === 0) throw new RangeError("no rounds to combine");
  const delays = runs.flatMap((r) => r.delays);
  const add = (xs: number[][]) => xs[0]!.map((_, i) => sum(xs.map((x) => x[i] ?? 0)));
  const rounds = runs.flatMap((r) => r.rounds);
  return {
    tasks: sum(runs.map((r) => r.tasks)),
    tasksPerSecond: median(rounds),
    rounds,
    delays,
    dispatch: summarize(delays),
    seconds: sum(runs.map((r) => r.seconds)),
    cpu: {
      orchestrators: sum(runs.map((r) => r.cpu.orchestrators)),
      workers: sum(runs.map((r) => r.cpu.workers)),
      nats: add(runs.map((r) => r.cpu.nats)),
    },
    planned: add(runs.map((r) => r.planned)),
  };
}

export async function scale(opts: ScaleOptions): Promise<ScaleFigures> {
  const configs = [
    ...opts.orchestratorCounts.map((n) => ({ n, cluster: false })),
    ...(opts.cluster ? [{ n: 1, cluster: true }] : []),
  ];
  const runs = configs.map(() => [] as LoadRun[]);
  for (let r = 0; r < opts.rounds; r++) {
    const order = configs.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order)
      runs[i]!.push(await orchestratorRun(opts, configs[i]!.n, configs[i]!.cluster));
  }
  const orchestrators = opts.orchestratorCounts.map((n, i) => ({
    orchestrators: n,
    run: combineRounds(runs[i]!),
  }));
  const fanout = opts.fanout.replicas > 0 ? await fanoutRun(opts) : null;
  const cluster = opts.cluster ? combineRounds(runs[configs.length - 1]!) : null;
  return { orchestrators, fanout, cluster };
}

/** The CPU figures of one run (ms per task), keyed under `prefix`. */
function cpuFigures(prefix: string, what: string, run: LoadRun, natsNodes: boolean): Figure[] {
  return [
    {
      key: `${prefix}.cpu.orchestrators`,
      name: `${what}: orchestrators' CPU per task (all together)`,
      value: ms(run.cpu.orchestrators, run.tasks),
      unit: "ms",
    },
    {
      key: `${prefix}.cpu.workers`,
      name: `${what}: workers' CPU per task`,
      value: ms(run.cpu.workers, run.tasks),
      unit: "ms",
    },
    {
      key: `${prefix}.cpu.nats`,
      name: `${what}: nats-server CPU per task${run.cpu.nats.length > 1 ? " (all nodes)" : ""}`,
      value: ms(sum(run.cpu.nats), run.tasks),
      unit: "ms",
    },
    ...(natsNodes
      ? run.cpu.nats.map((c, i) => ({
          key: `${prefix}.cpu.nats.node${i + 1}`,
          name: `${what}: nats-server CPU per task, node n${i + 1}`,
          value: ms(c, run.tasks),
          unit: "ms" as const,
        }))
      : []),
  ];
}

export function scaleSection(f: ScaleFigures, opts: ScaleOptions, durationMs: number): Section {
  const base = f.orchestrators.find((o) => o.orchestrators === 1)?.run ?? null;
  const load = `${opts.missions} missions × ${opts.tasksPerMission} no-op tasks at once`;
  const figures: Figure[] = [
    {
      key: "scale.orchestrators.replicas",
      name: "(a) and (c): worker replicas (processes)",
      value: opts.workers.replicas,
      unit: "replicas",
    },
  ];
  for (const { orchestrators: n, run } of f.orchestrators) {
    const what = `${n} orchestrator${n > 1 ? "s" : ""}`;
    figures.push(
      {
        key: `scale.orchestrators.${n}.throughput`,
        name: `${what}, ${load}: tasks/s`,
        value: run.tasksPerSecond,
        unit: "tasks/s",
        ...(base && n !== 1
          ? {
              reference: { label: "1 orchestrator", value: base.tasksPerSecond, unit: "tasks/s" },
              ratio: ratio(run.tasksPerSecond, base.tasksPerSecond),
            }
          : {}),
      },
      {
        key: `scale.orchestrators.${n}.p99`,
        name: `${what}: task_assigned → task_started, p99`,
        value: run.dispatch.p99,
        unit: "ms",
        ...(base && n !== 1
          ? {
              reference: { label: "1 orchestrator", value: base.dispatch.p99, unit: "ms" },
              ratio: ratio(run.dispatch.p99, base.dispatch.p99),
            }
          : {}),
      },
      ...cpuFigures(`scale.orchestrators.${n}`, what, run, false),
    );
  }
  const fo = f.fanout;
  if (fo) {
    const r = opts.fanout.replicas;
    figures.push(
      { key: "scale.fanout.replicas", name: "(b): replicas", value: r, unit: "replicas" },
      {
        key: "scale.fanout.throughput",
        name: `${r} replicas × ${opts.fanout.concurrency} slot on one consumer, ${fo.run.tasks} tasks: tasks/s`,
        value: fo.run.tasksPerSecond,
        unit: "tasks/s",
      },
      {
        key: "scale.fanout.p99",
        name: `${r} replicas: task_assigned → task_started, p99`,
        value: fo.run.dispatch.p99,
        unit: "ms",
      },
      {
        key: "scale.fanout.min",
        name: `${r} replicas: fewest tasks one replica ran`,
        value: fo.spread.min,
        unit: "tasks",
        reference: { label: "even share", value: fo.spread.mean, unit: "tasks" },
        ratio: ratio(fo.spread.min, fo.spread.mean),
      },
      {
        key: "scale.fanout.max",
        name: `${r} replicas: most tasks one replica ran`,
        value: fo.spread.max,
        unit: "tasks",
        reference: { label: "even share", value: fo.spread.mean, unit: "tasks" },
        ratio: ratio(fo.spread.max, fo.spread.mean),
      },
      {
        key: "scale.fanout.cov",
        name: `${r} replicas: coefficient of variation of tasks per replica`,
        value: fo.spread.cov,
        unit: "×",
      },
      {
        key: "scale.fanout.memory",
        name: `${r} replicas in one process: resident memory per replica`,
        value: fo.poolMb / r,
        unit: "MB",
        reference: { label: "one idle `swarm worker` process", value: fo.processMb, unit: "MB" },
        ratio: ratio(fo.poolMb / r, fo.processMb),
      },
      ...cpuFigures("scale.fanout", `${r} replicas`, fo.run, false),
    );
  }
  const c = f.cluster;
  if (c) {
    const vsBase = (
      label: string,
      value: number,
      reference: number | undefined,
      unit: "tasks/s" | "ms",
    ) =>
      reference === undefined
        ? {}
        : { reference: { label, value: reference, unit }, ratio: ratio(value, reference) };
    figures.push(
      {
        key: "scale.cluster.throughput",
        name: `3-node cluster, R3 streams, 1 orchestrator, ${load}: tasks/s`,
        value: c.tasksPerSecond,
        unit: "tasks/s",
        ...vsBase("one server, 1 orchestrator", c.tasksPerSecond, base?.tasksPerSecond, "tasks/s"),
      },
      {
        key: "scale.cluster.p99",
        name: "3-node cluster, R3: task_assigned → task_started, p99",
        value: c.dispatch.p99,
        unit: "ms",
        ...vsBase("one server", c.dispatch.p99, base?.dispatch.p99, "ms"),
      },
      ...cpuFigures("scale.cluster", "3-node cluster, R3", c, true),
    );
  }
  const runLine = (what: string, run: LoadRun) =>
    `${what}: ${run.tasks} tasks in ${run.seconds.toFixed(1)} s` +
    (run.rounds.length > 1
      ? ` (${run.rounds.length} rounds: ${run.rounds.map((x) => x.toFixed(0)).join(", ")} tasks/s)`
      : "") +
    `, dispatch p50 ` +
    `${run.dispatch.p50.toFixed(1)} ms / p99 ${run.dispatch.p99.toFixed(1)} ms, CPU ` +
    `orchestrators ${run.cpu.orchestrators.toFixed(1)} s, workers ${run.cpu.workers.toFixed(1)} s, ` +
    `nats-server ${run.cpu.nats.map((x) => x.toFixed(1)).join(" + ")} s` +
    (run.planned.length > 1 ? `; missions planned per orchestrator ${run.planned.join(", ")}` : "");
  const w = opts.workers;
  return {
    id: "scale",
    title: "11. Past one orchestrator",
    durationMs,
    figures,
    notes: [
      `(a) ${opts.orchestratorCounts.join(", ")} orchestrators (\`swarm orchestrator\` processes ` +
        `sharing SQUAD_MISSIONS' consumer; each mission's lease goes to the one that took it), ` +
        `${load}, submitted together after a warm-up mission per orchestrator, on one worker ` +
        `group (\`swarm worker --replicas ${w.replicas} --concurrency ${w.concurrency}\`), each ` +
        `configuration on a fresh nats-server and swarm, in ${opts.rounds} alternating ` +
        `round(s) (1, 2, 4${opts.cluster ? ", R3" : ""}, then back): tasks/s is the median ` +
        `round's, dispatch and CPU are over every round. Timed ` +
        `from the first task_assigned to the last mission_completed. task_assigned → ` +
        `task_started is every task's, so with ${opts.missions * opts.tasksPerMission} tasks ` +
        `ready for ${w.replicas * w.concurrency} slots it is mostly the wait for a free slot, ` +
        `not the dispatch path (section 2 has that). CPU is read from /proc/<pid>/stat of every ` +
        `process (nats-server included) just before the submissions and after the last end, ` +
        `so it includes planning.`,
      ...f.orchestrators.map(({ orchestrators: n, run }) => runLine(`${n} orchestrator(s)`, run)),
      ...(fo
        ? [
            `(b) ${opts.fanout.replicas} replicas of \`${BENCH_AGENT}\` with ` +
              `${opts.fanout.concurrency} slot each, all pulling from the one consumer ` +
              `\`worker-${BENCH_AGENT}\`, in one process (src/bench/replica-pool.ts: each replica ` +
              `a real startWorkerReplica with its own NATS connection; one heap and one event ` +
              `loop for all, so ${opts.fanout.replicas} processes' memory is not needed: ` +
              `${(fo.poolMb / 1024).toFixed(2)} GB resident for all of them against ` +
              `${((fo.processMb * opts.fanout.replicas) / 1024).toFixed(1)} GB for ` +
              `${opts.fanout.replicas} idle \`swarm worker\` processes). One mission of ` +
              `${fo.run.tasks} tasks after a warm-up; tasks per replica from task_started's ` +
              `\`worker\`: min ${fo.spread.min}, max ${fo.spread.max}, mean ` +
              `${fo.spread.mean.toFixed(1)}, CoV ${fo.spread.cov.toFixed(2)}. One event loop ` +
              `serves every replica here, so a replica's next pull waits for the others' work: ` +
              `the spread measures the consumer and that loop together.`,
            runLine(`${opts.fanout.replicas} replicas`, fo.run),
          ]
        : []),
      ...(c
        ? [
            `(c) the load of (a) with one orchestrator on a 3-node nats-server cluster on this ` +
              `machine (routes on 127.0.0.1, every stream and bucket R3 via ` +
              `SWARM_STREAM_REPLICAS=3; every client connects to n1, the stream leaders are ` +
              `where the cluster put them), in the rounds of (a); the reference is (a)'s ` +
              `1-orchestrator run on one server.`,
            runLine("R3 cluster", c),
          ]
        : []),
    ],
  };
}
