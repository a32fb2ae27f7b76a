/**
 * Runs the benchmarks in order, each on its own nats-server with the real
 * swarm processes, prints the table and writes the Markdown page and the
 * plot. A benchmark that fails is reported as such (with what it measured
 * before) and the others still run.
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors.ts";
import { dashboardBench, dashboardSection, type DashboardBenchOptions } from "./dashboard.ts";
import { dispatchLatency, dispatchSection, type DispatchOptions } from "./dispatch-latency.ts";
import { loadMeter, machineFacts } from "./machine.ts";
import { makespan, makespanSection, type MakespanOptions } from "./makespan.ts";
import { memory, memorySection, type MemoryOptions } from "./memory.ts";
import { modelScaling, modelSection, type ModelScalingOptions } from "./model-scaling.ts";
import { profileRun, type ProfileFigures, type ProfileOptions } from "./profile-run.ts";
import { rawJetStream, rawSection, type RawFigures, type RawOptions } from "./raw-jetstream.ts";
import { renderMarkdown, renderTable, type BenchReport } from "./report.ts";
import { BENCH_IDS, type BenchId, type Section } from "./results.ts";
import { scale, scaleSection, type ScaleOptions } from "./scale.ts";
import { panelsFromSections, renderPlot } from "./svg-plot.ts";
import {
  statusHistory,
  statusHistorySection,
  type StatusHistoryOptions,
} from "./status-history.ts";
import { throughput, throughputSection, type ThroughputOptions } from "./throughput.ts";
import { tracingOverhead, tracingSection, type TracingOptions } from "./tracing.ts";
import { workspaceBench, workspaceSection, type WorkspaceOptions } from "./workspace.ts";

export interface BenchPlan {
  raw: RawOptions;
  dispatch: DispatchOptions;
  throughput: ThroughputOptions;
  model: ModelScalingOptions;
  makespan: MakespanOptions;
  memory: MemoryOptions;
  profile: ProfileOptions;
  tracing: TracingOptions;
  workspace: WorkspaceOptions;
  statusHistory: StatusHistoryOptions;
  dashboard: DashboardBenchOptions;
  scale: ScaleOptions;
}

/** Sizes of the full run (< 10 minutes on two cores) and of --quick (< 1 minute). */
export function benchPlan(quick: boolean): BenchPlan {
  return quick
    ? {
        raw: { latencySamples: 300, throughputMessages: 5000, pullSlots: 8, payloadBytes: 1024 },
        dispatch: { tasks: 50, chainLength: 50, warmupTasks: 5 },
        throughput: {
          replicaCounts: [4],
          concurrency: 4,
          tasks: 200,
          shellReplicaCounts: [],
          shellTasks: 60,
          largeMission: null,
          unsandboxedRun: false,
          stepSizes: [100, 1000],
        },
        model: {
          slotCounts: [32],
          splits: [],
          rounds: 3,
          callMs: 200,
          callsPerTask: 2,
          warmupTasks: 4,
        },
        makespan: { unitMs: 200, callsPerTask: 2, repeats: 1, langGraphWarmup: false },
        memory: { slots: 16, rounds: 1, callMs: 200, idleSettleMs: 500, importBreakdown: false },
        profile: {
          noopTasks: 150,
          replicas: 2,
          concurrency: 4,
          modelTasks: 32,
          modelSlots: 16,
          callMs: 200,
        },
        tracing: { tasks: 300, replicas: 2, concurrency: 4, rounds: 2 },
        workspace: {
          cost: { files: 1000, fileBytes: 10_000, rounds: 10 },
          throughput: {
            replicas: 2,
            concurrency: 4,
            tasks: 200,
            rounds: 1,
            waveTasks: 40,
            width: 8,
          },
        },
        statusHistory: { sizes: [10, 1000], commandRounds: 2, readRounds: 5, startRounds: 1 },
        dashboard: { tasks: 200, samples: 40 },
        scale: {
          orchestratorCounts: [1, 2],
          missions: 4,
          tasksPerMission: 25,
          workers: { replicas: 2, concurrency: 4 },
          fanout: { replicas: 16, concurrency: 1, tasksPerReplica: 5 },
          cluster: true,
          rounds: 1,
        },
      }
    : {
        raw: { latencySamples: 1000, throughputMessages: 30_000, pullSlots: 8, payloadBytes: 1024 },
        dispatch: { tasks: 1000, chainLength: 100, warmupTasks: 20 },
        throughput: {
          replicaCounts: [1, 2, 4, 8],
          concurrency: 4,
          tasks: 1000,
          shellReplicaCounts: [1, 4],
          shellTasks: 200,
          largeMission: 4000,
          unsandboxedRun: true,
          stepSizes: [100, 1000],
        },
        model: {
          slotCounts: [1, 2, 4, 8, 16, 32],
          splits: [{ replicas: 2, concurrency: 16 }],
          rounds: 5,
          callMs: 200,
          callsPerTask: 2,
          warmupTasks: 8,
        },
        makespan: { unitMs: 200, callsPerTask: 2, repeats: 3, langGraphWarmup: true },
        memory: {
          slots: 32,
          rounds: 3,
          callMs: 200,
          idleSettleMs: 2000,
          importBreakdown: true,
        },
        profile: {
          noopTasks: 200,
          replicas: 2,
          concurrency: 4,
          modelTasks: 96,
          modelSlots: 32,
          callMs: 200,
        },
        tracing: { tasks: 1000, replicas: 4, concurrency: 4, rounds: 3 },
        workspace: {
          cost: { files: 1000, fileBytes: 10_000, rounds: 50 },
          throughput: {
            replicas: 4,
            concurrency: 4,
            tasks: 500,
            rounds: 3,
            waveTasks: 100,
            width: 8,
          },
        },
        statusHistory: { sizes: [10, 10_000], commandRounds: 5, readRounds: 15, startRounds: 4 },
        dashboard: { tasks: 1000, samples: 200 },
        scale: {
          orchestratorCounts: [1, 2, 4],
          missions: 20,
          tasksPerMission: 100,
          workers: { replicas: 4, concurrency: 4 },
          fanout: { replicas: 64, concurrency: 1, tasksPerReplica: 20 },
          cluster: true,
          rounds: 2,
        },
      };
}

export interface RunBenchOptions {
  quick: boolean;
  only: BenchId[];
  profile: boolean;
  /** Markdown output; the plot goes beside it (same name, .svg). Null: print only. */
  out: string | null;
  /** The command line shown in the docs. */
  command: string;
  /** Progress lines (stderr). */
  say: (line: string) => void;
}

export interface RunBenchResult {
  sections: Section[];
  markdownPath: string | null;
  svgPath: string | null;
  table: string;
  /** Every benchmark finished (missed targets are not failures). */
  complete: boolean;
}

/**
 * The page as the repository's Prettier would write it (tables aligned), so
 * `prettier --check docs` passes on a generated page. Prettier is a dev
 * dependency: without it the page is written as rendered.
 */
async function formatMarkdown(
  markdown: string,
  file: string,
  opts: Pick<RunBenchOptions, "say">,
): Promise<string> {
  try {
    const prettier = await import("prettier");
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(markdown, { ...config, filepath: file });
  } catch (err) {
    opts.say(`bench: the page is written unformatted (prettier: ${errorMessage(err)})`);
    return markdown;
  }
}

/**
 * Default output: docs/benchmarks.md for a complete full run; a temp dir for
 * --quick or a subset, so they never replace the page of a complete run.
 */
export function defaultOutput(quick: boolean, partial: boolean, repoRoot: string): string {
  return quick || partial
    ? path.join(os.tmpdir(), quick ? "squad-bench-quick" : "squad-bench-partial", "benchmarks.md")
    : path.join(repoRoot, "docs", "benchmarks.md");
}

export async function runBench(opts: RunBenchOptions): Promise<RunBenchResult> {
  const plan = benchPlan(opts.quick);
  const selected = new Set(opts.only.length ? opts.only : BENCH_IDS);
  const meter = loadMeter();
  await meter.sample();
  await sleep(1000);
  const before = await meter.sample();
  const machine = await machineFacts();
  const load1Start = os.loadavg()[0] ?? 0;
  const during = loadMeter();
  await during.sample();
  const t0 = performance.now();
  const sections: Section[] = [];
  let raw: RawFigures | null = null;

  const step = async (id: BenchId, title: string, run: () => Promise<Section>) => {
    if (!selected.has(id)) return;
    opts.say(`bench: ${title}...`);
    const started = performance.now();
    try {
      const section = await run();
      sections.push(section);
      opts.say(`bench: ${title} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : errorMessage(err);
      opts.say(`bench: ${title} FAILED: ${errorMessage(err)}`);
      sections.push({
        id,
        title,
        figures: [],
        notes: [],
        durationMs: performance.now() - started,
        error: message,
      });
    }
  };
  const since = (t: number) => performance.now() - t;

  await step("raw", "1. The limit: raw JetStream", async () => {
    const t = performance.now();
    raw = await rawJetStream(plan.raw);
    return rawSection(raw, plan.raw, since(t));
  });
  await step("dispatch", "2. Dispatch latency", async () => {
    const t = performance.now();
    return dispatchSection(await dispatchLatency(plan.dispatch), raw, plan.dispatch, since(t));
  });
  await step("throughput", "3. Throughput, no-op tasks end to end", async () => {
    const t = performance.now();
    return throughputSection(await throughput(plan.throughput), raw, plan.throughput, since(t));
  });
  await step("model", "4. Model-bound scaling", async () => {
    const t = performance.now();
    return modelSection(await modelScaling(plan.model), plan.model, since(t));
  });
  await step("makespan", "5. Makespan of a DAG with uneven tasks", async () => {
    const t = performance.now();
    return makespanSection(await makespan(plan.makespan), plan.makespan, since(t));
  });
  await step("memory", "6. Memory of a worker replica", async () => {
    const t = performance.now();
    return memorySection(await memory(plan.memory), plan.memory, since(t));
  });

  await step("tracing", "7. Tracing exporting versus off", async () => {
    const t = performance.now();
    return tracingSection(await tracingOverhead(plan.tracing), plan.tracing, since(t));
  });

  await step("workspace", "8. Git workspaces", async () => {
    const t = performance.now();
    return workspaceSection(await workspaceBench(plan.workspace), plan.workspace, since(t));
  });

  await step("status-history", "9. Status cost against history", async () => {
    const t = performance.now();
    return statusHistorySection(
      await statusHistory(plan.statusHistory),
      plan.statusHistory,
      since(t),
    );
  });

  await step("dashboard", "10. Dashboard watching a mission", async () => {
    const t = performance.now();
    return dashboardSection(await dashboardBench(plan.dashboard), plan.dashboard, since(t));
  });

  await step("scale", "11. Past one orchestrator", async () => {
    const t = performance.now();
    return scaleSection(await scale(plan.scale), plan.scale, since(t));
  });

  let profile: ProfileFigures | null = null;
  if (opts.profile) {
    opts.say("bench: profiled runs (node --cpu-prof)...");
    try {
      profile = await profileRun(plan.profile);
    } catch (err) {
      opts.say(`bench: profiled runs FAILED: ${errorMessage(err)}`);
    }
  }

  const totalMs = performance.now() - t0;
  const table = renderTable(sections);
  let markdownPath: string | null = null;
  let svgPath: string | null = null;
  if (opts.out) {
    markdownPath = path.resolve(opts.out);
    svgPath = markdownPath.replace(/\.md$/, "") + ".svg";
    const panels = panelsFromSections(sections);
    const report: BenchReport = {
      sections,
      machine,
      load: { before, during: await during.sample(), load1Start, load1End: os.loadavg()[0] ?? 0 },
      command: opts.command,
      quick: opts.quick,
      totalMs,
      profile,
      plotPath: panels.length ? path.basename(svgPath) : null,
    };
    await mkdir(path.dirname(markdownPath), { recursive: true });
    await writeFile(markdownPath, await formatMarkdown(renderMarkdown(report), markdownPath, opts));
    if (panels.length) {
      await writeFile(
        svgPath,
        renderPlot(
          panels,
          `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ` +
            `${machine.natsServer}, ${machine.date.slice(0, 10)}${opts.quick ? " (quick mode)" : ""}`,
        ),
      );
    } else {
      svgPath = null;
    }
  }
  return {
    sections,
    markdownPath,
    svgPath,
    table,
    complete: sections.every((s) => !s.error),
  };
}
