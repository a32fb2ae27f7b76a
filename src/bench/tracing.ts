/**
 * Throughput with tracing exporting versus off, side by side: the same
 * no-op mission (`run: []` tasks) on the real orchestrator and worker
 * processes, once with no OTEL_* variable (no SDK loaded) and once exporting
 * every span over OTLP/HTTP (JSON) to a receiver in this process on
 * 127.0.0.1, in alternating rounds (off, on, then on, off, ...) so that a
 * drift of the machine weighs on both. Each run is a fresh swarm: the
 * processes read OTEL_* at start.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { atMost, type Figure, type Section } from "./results.ts";
import { noopWidePlan } from "./plans.ts";
import { median, ratePerSecond } from "./stats.ts";
import { startHarness, treeCpuSeconds } from "./swarm-harness.ts";

export interface TracingOptions {
  tasks: number;
  replicas: number;
  concurrency: number;
  /** Rounds of (off, on) pairs; the order flips each round. */
  rounds: number;
}

export interface TracingRun {
  mode: "off" | "on";
  round: number;
  tasksPerSecond: number;
  /** CPU time of the orchestrator and the workers (with their children) per task, in ms. */
  cpuMsPerTask: number;
  /** Spans the receiver got from this run's swarm, per task run (0 when off). */
  spans: number;
}

export interface TracingFigures {
  runs: TracingRun[];
  off: number;
  on: number;
  /** How much slower with tracing, in percent of the off throughput (negative: faster). */
  slowdownPct: number;
  cpuOff: number;
  cpuOn: number;
  /** How much more CPU per task with tracing, in percent. */
  cpuExtraPct: number;
  spansPerTask: number;
}

const OTEL_VARS = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
  "OTEL_TRACES_EXPORTER",
  "OTEL_SDK_DISABLED",
] as const;

/**
 * A collector stand-in: keeps each OTLP/HTTP JSON export and answers 200;
 * the spans are counted when asked, after the run, so that decoding them
 * does not take CPU from the swarm it measures (a real collector runs
 * elsewhere).
 */
async function startReceiver(): Promise<{ url: string; spans(): number; close(): Promise<void> }> {
  let spans = 0;
  let pending: Buffer[] = [];
  const count = () => {
    for (const raw of pending) {
      try {
        const body = JSON.parse(raw.toString("utf8")) as {
          resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }>;
        };
        for (const rs of body.resourceSpans ?? [])
          for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
      } catch {
        // not JSON: not ours to count
      }
    }
    pending = [];
    return spans;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      pending.push(Buffer.concat(chunks));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Sets (or clears) the OTEL_* variables the swarm processes inherit; returns the restore. */
function otelEnv(endpoint: string | null): () => void {
  const saved = Object.fromEntries(OTEL_VARS.map((k) => [k, process.env[k]]));
  for (const k of OTEL_VARS) delete process.env[k];
  if (endpoint) {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json";
  }
  return () => {
    for (const k of OTEL_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  };
}

async function oneRun(
  mode: "off" | "on",
  round: number,
  opts: TracingOptions,
  receiver: Awaited<ReturnType<typeof startReceiver>>,
): Promise<TracingRun> {
  const restore = otelEnv(mode === "on" ? receiver.url : null);
  const spansBefore = receiver.spans();
  const warmupTasks = opts.replicas * opts.concurrency;
  let tasksPerSecond: number;
  let cpuMsPerTask: number;
  try {
    const h = await startHarness(`tracing-${mode}`);
    try {
      const workers = await h.startWorkers({
        replicas: opts.replicas,
        concurrency: opts.concurrency,
      });
      try {
        await h.runMission(
          `tracing-warmup-${mode}-${round}`,
          noopWidePlan(warmupTasks, "empty"),
          120_000,
        );
        const cpu = async () =>
          (await treeCpuSeconds(h.orchestrator.pid)) + (await treeCpuSeconds(workers.process.pid));
        const cpu0 = await cpu();
        const run = await h.runMission(
          `tracing-${mode}-${round}`,
          noopWidePlan(opts.tasks, "empty"),
          600_000,
        );
        const completed = run.records.filter((r) => r.type === "task_completed").length;
        if (completed < opts.tasks)
          throw new Error(`only ${completed} of ${opts.tasks} tasks completed`);
        tasksPerSecond = ratePerSecond(opts.tasks, run.finishedAt - run.firstAssignedAt);
        cpuMsPerTask = (((await cpu()) - cpu0) * 1000) / opts.tasks;
      } finally {
        await workers.stop();
      }
    } finally {
      // The processes flush their last spans as they end: all are in once they have stopped.
      await h.close();
    }
  } finally {
    restore();
  }
  return {
    mode,
    round,
    tasksPerSecond,
    cpuMsPerTask,
    spans: (receiver.spans() - spansBefore) / (opts.tasks + warmupTasks),
  };
}

export async function tracingOverhead(opts: TracingOptions): Promise<TracingFigures> {
  const receiver = await startReceiver();
  const runs: TracingRun[] = [];
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      const order: Array<"off" | "on"> = round % 2 === 1 ? ["off", "on"] : ["on", "off"];
      for (const mode of order) runs.push(await oneRun(mode, round, opts, receiver));
    }
  } finally {
    await receiver.close();
  }
  const of = (mode: "off" | "on", pick: (r: TracingRun) => number) =>
    median(runs.filter((r) => r.mode === mode).map(pick));
  const off = of("off", (r) => r.tasksPerSecond);
  const on = of("on", (r) => r.tasksPerSecond);
  const cpuOff = of("off", (r) => r.cpuMsPerTask);
  const cpuOn = of("on", (r) => r.cpuMsPerTask);
  const onRuns = runs.filter((r) => r.mode === "on");
  return {
    runs,
    off,
    on,
    slowdownPct: off > 0 ? ((off - on) / off) * 100 : 0,
    cpuOff,
    cpuOn,
    cpuExtraPct: cpuOff > 0 ? ((cpuOn - cpuOff) / cpuOff) * 100 : 0,
    spansPerTask: onRuns.reduce((n, r) => n + r.spans, 0) / onRuns.length,
  };
}

export function tracingSection(
  t: TracingFigures,
  opts: TracingOptions,
  durationMs: number,
): Section {
  const slots = `${opts.replicas} replicas × ${opts.concurrency} slots, ${opts.tasks} no-op tasks`;
  const figures: Figure[] = [
    { key: "tracing.off", name: `tasks/s, tracing off (${slots})`, value: t.off, unit: "tasks/s" },
    {
      key: "tracing.on",
      name: `tasks/s, tracing exporting over OTLP/HTTP (${slots})`,
      value: t.on,
      unit: "tasks/s",
      reference: { label: "tracing off", value: t.off, unit: "tasks/s" },
      ratio: t.off > 0 ? t.on / t.off : null,
    },
    {
      key: "tracing.slowdown",
      name: "slower with tracing exporting",
      value: Math.max(0, t.slowdownPct),
      unit: "%",
      target: atMost(Math.max(0, t.slowdownPct), 5, "%"),
    },
    {
      key: "tracing.cpu.off",
      name: "CPU per task, orchestrator + workers, tracing off",
      value: t.cpuOff,
      unit: "ms",
    },
    {
      key: "tracing.cpu.on",
      name: "CPU per task, orchestrator + workers, tracing exporting",
      value: t.cpuOn,
      unit: "ms",
      reference: { label: "tracing off", value: t.cpuOff, unit: "ms" },
      ratio: t.cpuOff > 0 ? t.cpuOn / t.cpuOff : null,
    },
  ];
  const perRun = t.runs
    .map(
      (r) =>
        `round ${r.round} ${r.mode}: ${r.tasksPerSecond.toFixed(0)} tasks/s, ${r.cpuMsPerTask.toFixed(2)} ms CPU/task`,
    )
    .join("; ");
  return {
    id: "tracing",
    title: "7. Tracing exporting versus off",
    figures,
    notes: [
      `The same ${opts.tasks}-task no-op mission on a fresh swarm (orchestrator and ` +
        `\`swarm worker --replicas ${opts.replicas} --concurrency ${opts.concurrency}\`) ` +
        "with no OTEL_* variable, and with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP " +
        "receiver in the benchmark process (JSON, kept during the run, decoded and counted after it), in " +
        `${opts.rounds} alternating rounds; the figures are the medians. Runs: ${perRun}.`,
      `With tracing on, ${t.spansPerTask.toFixed(1)} spans per task reached the receiver ` +
        "(the publish of each event of the mission, the attempt, its report), counted once the " +
        "processes had stopped and flushed; with tracing off, none (no SDK is loaded).",
      "CPU per task (user + system of the orchestrator's and the workers' process trees over the " +
        "measured mission) depends less than throughput on other work running on the machine: " +
        `${t.cpuExtraPct >= 0 ? "+" : ""}${t.cpuExtraPct.toFixed(1)}% with tracing exporting.`,
    ],
    durationMs,
  };
}
