/**
 * Benchmark: the dashboard watching a mission of 1,000 tasks. A real
 * nats-server, `swarm dashboard` as its own process, the mission's page open
 * in a real Chromium (playwright-core, Debian's chromium). Events are
 * published one at a time, as a worker would (a task started, then done);
 * the page notes, with a MutationObserver, the wall-clock time at which the
 * task's node shows the new state: event published → change on the page,
 * measured in the browser. Also the first render of the 1,000-node plan and
 * the dashboard process's CPU and memory over the run. Step 9 of `swarm
 * bench` (`--only dashboard`); alone:
 *
 *   node src/bench/dashboard.ts [--tasks 1000] [--samples 200]
 */
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connectBus, createPublisher, provisionStreams } from "../bus/index.ts";
import { makeEvent, type PlanInput } from "../schema/index.ts";
import { startBenchNatsServer } from "./nats-server.ts";
import { cpuSeconds, peakResidentMb, residentMb, spawnSwarm } from "./processes.ts";
import type * as PlaywrightCoreModule from "playwright-core";
import type { Figure, Section } from "./results.ts";
import { summarize, type LatencySummary } from "./stats.ts";

export interface DashboardBenchOptions {
  /** Tasks in the mission (waves of 100, each task depending on one of the wave before). */
  tasks: number;
  /** Events measured (task_started and task_completed alternately). */
  samples: number;
}

export interface DashboardBenchFigures {
  tasks: number;
  /** Page opened → the plan's graph drawn with every node (fetch, dagre layout, SVG). */
  firstRenderMs: number;
  /** Event published → the task's node shows it, in the browser. */
  eventToPage: LatencySummary;
  /** The dashboard process over the measured events: CPU seconds ÷ wall seconds. */
  cpuShare: number;
  rssMb: number | null;
  peakRssMb: number | null;
}

const WAVE = 100;
const MISSION = "m-bench-dashboard";
const TOKEN = "bench-dashboard-token-0123456789";

/** The mission: waves of WAVE tasks; each task depends on the one at its place in the wave before. */
export function dashboardBenchPlan(tasks: number): PlanInput {
  const waves: PlanInput["waves"] = [];
  for (let i = 0; i < tasks; i += WAVE) {
    const w = waves.length + 1;
    const ids = Array.from({ length: Math.min(WAVE, tasks - i) }, (_, k) => `t${i + k + 1}`);
    waves.push({
      wave: w,
      tasks: ids.map((id, k) => ({
        id,
        agent: "builder",
        title: `task ${id}`,
        run: [],
        depends_on: w === 1 ? [] : [`t${i - WAVE + k + 1}`],
      })),
    });
  }
  return { waves };
}

/** The page's record of first sightings (set up by the MutationObserver below). */
interface Seen {
  __seen: Map<string, number>;
}

async function chromiumPath(): Promise<string> {
  const wanted = process.env.CHROMIUM_PATH
    ? [process.env.CHROMIUM_PATH]
    : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
  for (const p of wanted) {
    if (
      await access(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  throw new Error(
    process.env.CHROMIUM_PATH
      ? `the dashboard benchmark needs Chromium: CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist`
      : `the dashboard benchmark needs Chromium at ${wanted.join(" or ")}: apt-get install chromium, or set CHROMIUM_PATH`,
  );
}

type PlaywrightCore = typeof PlaywrightCoreModule;

/** playwright-core, a development dependency: loaded only when this benchmark runs. */
async function playwright(): Promise<PlaywrightCore> {
  try {
    return await import("playwright-core");
  } catch (err) {
    throw new Error(
      `the dashboard benchmark drives Chromium with playwright-core, a development dependency (npm install): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export async function dashboardBench(opts: DashboardBenchOptions): Promise<DashboardBenchFigures> {
  // Both checked before anything starts: without them the benchmark fails at once, saying why.
  const executablePath = await chromiumPath();
  const { chromium } = await playwright();
  const dir = await mkdtemp(path.join(os.tmpdir(), "squad-bench-dashboard-"));
  const nats = await startBenchNatsServer();
  const nc = await connectBus({ servers: nats.url, name: "bench-dashboard" });
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  let dashboard: Awaited<ReturnType<typeof spawnSwarm>> | null = null;
  try {
    await provisionStreams(nc);
    const publisher = createPublisher(nc);
    await publisher.publish(
      makeEvent(
        "mission_planned",
        { mission_id: MISSION, source: "orchestrator" },
        { title: "Dashboard benchmark", planner: null, plan: dashboardBenchPlan(opts.tasks) },
      ),
    );
    const env = {
      ...process.env,
      NATS_URL: nats.url,
      SWARM_WORKSPACE: dir,
      SWARM_STATE_DIR: path.join(dir, ".state"),
      SWARM_DASHBOARD_TOKEN: TOKEN,
      SWARM_LOG_LEVEL: "warn",
    };
    const logPath = path.join(dir, "dashboard.log");
    dashboard = await spawnSwarm(["dashboard", "--port", "0"], env, logPath);
    await dashboard.waitForLog(/dashboard: http:\/\/\S+\//);
    const url = /dashboard: (http:\/\/\S+\/)/.exec(await readFile(logPath, "utf8"))![1]!;

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const opened = Date.now();
    await page.goto(`${url}missions/${MISSION}`);
    await page
      .locator("svg .node")
      .nth(opts.tasks - 1)
      .waitFor({ timeout: 120_000 });
    const firstRenderMs = Date.now() - opened;
    // The page's clock: when a node first shows a state (wall-clock ms).
    await page.evaluate(`(() => {
      window.__seen = new Map();
      const note = () => {
        const at = performance.timeOrigin + performance.now();
        for (const n of document.querySelectorAll("svg .node")) {
          const key = n.dataset.taskId + "=" + n.dataset.state;
          if (!window.__seen.has(key)) window.__seen.set(key, at);
        }
      };
      new MutationObserver(note).observe(document.getElementById("view"), { subtree: true, childList: true, attributes: true });
      note();
    })()`);

    const latencies: number[] = [];
    const cpuBefore = await cpuSeconds(dashboard.pid);
    const started = Date.now();
    for (let i = 0; i < opts.samples; i++) {
      const task = `t${Math.floor(i / 2) + 1}`;
      const done = i % 2 === 1;
      const state = done ? "succeeded" : "running";
      const event = done
        ? makeEvent(
            "task_completed",
            { mission_id: MISSION, task_id: task, source: "builder/bench" },
            {
              result: {
                status: "succeeded",
                summary: "ok",
                steps: [],
                verification: [],
                usage: { model: null, input_tokens: 0, output_tokens: 0 },
                attempt: 1,
                duration_ms: 1,
                worker: "builder/bench",
              },
            },
          )
        : makeEvent(
            "task_started",
            { mission_id: MISSION, task_id: task, source: "builder/bench" },
            { attempt: 1, worker: "builder/bench" },
          );
      const sent = Date.now();
      await publisher.publish(event);
      const key = `${task}=${state}`;
      // Functions (serialized into the page), not strings: the page's policy forbids eval.
      await page.waitForFunction((k) => (globalThis as unknown as Seen).__seen.has(k), key, {
        timeout: 30_000,
        polling: 20,
      });
      const at = await page.evaluate((k) => (globalThis as unknown as Seen).__seen.get(k)!, key);
      latencies.push(Math.max(0, at - sent));
    }
    const wall = (Date.now() - started) / 1000;
    const cpuAfter = await cpuSeconds(dashboard.pid);
    return {
      tasks: opts.tasks,
      firstRenderMs,
      eventToPage: summarize(latencies),
      cpuShare: cpuBefore && cpuAfter ? (cpuAfter.own - cpuBefore.own) / wall : 0,
      rssMb: await residentMb(dashboard.pid),
      peakRssMb: await peakResidentMb(dashboard.pid),
    };
  } finally {
    await browser.close().catch(() => undefined);
    await dashboard?.stop(2000);
    await nc.close().catch(() => undefined);
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The section of `swarm bench` (step 10). */
export function dashboardSection(
  f: DashboardBenchFigures,
  opts: DashboardBenchOptions,
  durationMs: number,
): Section {
  const mission = `mission of ${f.tasks} tasks`;
  const figures: Figure[] = [
    {
      key: "dashboard.render",
      name: `first render of the plan, ${mission} (fetch, dagre layout, SVG)`,
      value: f.firstRenderMs,
      unit: "ms",
    },
    {
      key: "dashboard.event.p50",
      name: `event published → the task's node changed in the browser, p50 (${mission})`,
      value: f.eventToPage.p50,
      unit: "ms",
    },
    {
      key: "dashboard.event.p99",
      name: `event published → the task's node changed in the browser, p99 (${mission})`,
      value: f.eventToPage.p99,
      unit: "ms",
    },
    {
      key: "dashboard.cpu",
      name: "dashboard process CPU while the events came in (share of one core)",
      value: f.cpuShare * 100,
      unit: "%",
    },
  ];
  if (f.rssMb !== null) {
    figures.push({
      key: "dashboard.rss",
      name: `dashboard process resident memory after the events (${mission})`,
      value: f.rssMb,
      unit: "MB",
    });
  }
  if (f.peakRssMb !== null) {
    figures.push({
      key: "dashboard.rss.peak",
      name: "dashboard process VmHWM (kernel's peak)",
      value: f.peakRssMb,
      unit: "MB",
    });
  }
  return {
    id: "dashboard",
    title: "10. Dashboard watching a mission",
    figures,
    notes: [
      `A real nats-server, \`swarm dashboard\` as its own process, and the page of a mission of ` +
        `${f.tasks} tasks (waves of ${WAVE}, each task depending on one of the wave before) open ` +
        "in Debian's Chromium (headless, driven by playwright-core). " +
        `${opts.samples} events are published one at a time as a worker would (a task started, ` +
        "then done); a MutationObserver in the page notes the wall-clock time at which the task's " +
        "node first shows the new state, so each latency is measured in the browser, from the " +
        "publish to the change on the page (same machine, same clock).",
      `Event → page: p50 ${f.eventToPage.p50.toFixed(0)} ms, p99 ${f.eventToPage.p99.toFixed(0)} ms, ` +
        `max ${f.eventToPage.max.toFixed(0)} ms over ${f.eventToPage.n} events. CPU is the ` +
        "dashboard process's user + system time over the measured events divided by their wall " +
        "time; memory from /proc/<pid>/status at the end. The browser's own CPU is not counted.",
    ],
    durationMs,
  };
}

/** One Markdown table of the figures. */
export function dashboardBenchMarkdown(f: DashboardBenchFigures): string {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  return [
    `| dashboard, mission of ${f.tasks} tasks | value |`,
    "| --- | --- |",
    `| first render of the plan (fetch, dagre layout, SVG) | ${ms(f.firstRenderMs)} |`,
    `| event → page, p50 | ${ms(f.eventToPage.p50)} |`,
    `| event → page, p99 | ${ms(f.eventToPage.p99)} |`,
    `| event → page, max (n = ${f.eventToPage.n}) | ${ms(f.eventToPage.max)} |`,
    `| dashboard CPU (share of one core) | ${(f.cpuShare * 100).toFixed(0)}% |`,
    `| dashboard resident memory (peak) | ${f.rssMb?.toFixed(0) ?? "?"} MB (${f.peakRssMb?.toFixed(0) ?? "?"} MB) |`,
  ].join("\n");
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const figures = await dashboardBench({ tasks: arg("tasks", 1000), samples: arg("samples", 200) });
  process.stdout.write(`${dashboardBenchMarkdown(figures)}\n`);
}
