/**
 * Benchmark 6, memory: resident memory (VmRSS in /proc/<pid>/status) of one
 * worker replica process when idle, and its peak while it runs model-bound
 * work on all its slots. The reference is a bare Node process of the same
 * version holding one NATS connection (the floor of any replica).
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { compiledEntry } from "../client/compiled.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { startFakeModelServer } from "./fake-model-server.ts";
import { fakeModelEnv } from "./model-scaling.ts";
import { modelWidePlan, noopWidePlan } from "./plans.ts";
import { REPO_ROOT, peakResidentMb, residentMb, trackChild } from "./processes.ts";
import { atMost, type Section } from "./results.ts";
import { startHarness } from "./swarm-harness.ts";

export interface MemoryOptions {
  slots: number;
  rounds: number;
  callMs: number;
  idleSettleMs: number;
  /** Also measure where idle memory comes from (five fresh processes importing module sets). */
  importBreakdown: boolean;
}

export interface MemoryFigures {
  referenceMb: number;
  idleMb: number;
  /** Highest sample while the model-bound mission ran. */
  loadPeakMb: number;
  /** VmHWM at the end: the kernel's own peak. */
  highWaterMb: number;
  /** Idle again after the load (LangChain loaded, caches warm). */
  idleAfterMb: number;
  orchestratorIdleMb: number;
  /** Whether the measured replica ran the compiled build (dist/) or the sources. */
  replicaCompiled: boolean;
  /** RSS of a fresh Node process right after importing each module set: where idle memory comes from. */
  imports: Array<{ what: string; mb: number; alone?: boolean }>;
}

/**
 * Module sets a replica loads, each step adding to the one before (specifiers
 * from the repository root), so the differences say what each part costs.
 */
const IMPORT_STEPS: Array<{ what: string; specifier: string | null }> = [
  { what: "nothing (bare Node)", specifier: null },
  { what: "the NATS client", specifier: "@nats-io/transport-node" },
  { what: "a first .ts file (Node's type stripper)", specifier: "./src/errors.ts" },
  { what: "the contract's zod schemas", specifier: "./src/schema/index.ts" },
  { what: "the worker runtime", specifier: "./src/workers/worker-replica.ts" },
  {
    what: "the worker command (what `swarm worker` loads)",
    specifier: "./src/cli/commands/worker.ts",
  },
];

/**
 * The same worker command compiled to JavaScript (dist/, see src/client/compiled.ts),
 * as the launcher runs replicas: no type stripper. Measured only when the build
 * matches the sources.
 */
const COMPILED_STEP = {
  what: "the NATS client and the worker command compiled (dist/: no type stripper)",
  specifiers: [
    "@nats-io/transport-node",
    "./dist/schema/index.js",
    "./dist/cli/commands/worker.js",
  ],
};

/** RSS in MB of a fresh `node` that imported `specifiers` in order (after a GC). */
async function rssAfterImport(specifiers: string[]): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      "--expose-gc",
      "--input-type=module",
      "-e",
      `for (const s of ${JSON.stringify(specifiers)}) await import(s); globalThis.gc?.();` +
        "process.stdout.write(String(process.memoryUsage().rss));",
    ],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  trackChild(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0 || !/^\d+$/.test(out)) {
    throw new Error(`importing ${specifiers.join(", ")} failed (exit ${code}): ${err.slice(-500)}`);
  }
  return Number(out) / 2 ** 20;
}

/** A bare Node process with one NATS connection: the floor of any replica's memory. */
async function referenceRss(natsUrl: string, settleMs: number): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      "import { connect } from '@nats-io/transport-node';" +
        "const nc = await connect({ servers: process.env.NATS_URL });" +
        "await nc.flush(); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);",
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, NATS_URL: natsUrl },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  trackChild(child);
  try {
    await new Promise<void>((resolve, reject) => {
      let err = "";
      child.stderr?.on("data", (b: Buffer) => (err += b.toString()));
      child.stdout?.on("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`reference process exited ${code}: ${err}`)));
    });
    await sleep(settleMs);
    const mb = await residentMb(child.pid ?? 0);
    if (mb === null) throw new Error("reference process is gone");
    return mb;
  } finally {
    child.kill("SIGKILL");
  }
}

export async function memory(opts: MemoryOptions): Promise<MemoryFigures> {
  const imports: MemoryFigures["imports"] = [];
  const loaded: string[] = [];
  for (const step of opts.importBreakdown ? IMPORT_STEPS : []) {
    if (step.specifier) loaded.push(step.specifier);
    imports.push({ what: step.what, mb: await rssAfterImport([...loaded]) });
  }
  if (opts.importBreakdown && (await compiledEntry())) {
    const mb = await rssAfterImport(COMPILED_STEP.specifiers);
    imports.push({ what: COMPILED_STEP.what, mb, alone: true });
  }
  const figures = await measureReplica(opts);
  return { ...figures, imports };
}

async function measureReplica(opts: MemoryOptions): Promise<Omit<MemoryFigures, "imports">> {
  const model = await startFakeModelServer({ callMs: opts.callMs });
  const h = await startHarness("memory");
  try {
    const referenceMb = await referenceRss(h.natsUrl, opts.idleSettleMs);
    const workers = await h.startWorkers({
      replicas: 1,
      concurrency: opts.slots,
      env: fakeModelEnv(model.url),
    });
    try {
      const pid = workers.process.pid;
      // The sources may change while the benchmark runs (then the build is stale and the
      // replica runs them instead, with the type stripper): say which one was measured.
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      const replicaCompiled = cmdline.split("\0").some((a) => a.endsWith(".js"));
      // Idle as a replica starts: online, pulling, no task run yet.
      await sleep(opts.idleSettleMs);
      const idleMb = (await residentMb(pid)) ?? NaN;
      const orchestratorIdleMb = (await residentMb(h.orchestrator.pid)) ?? NaN;
      let loadPeakMb = idleMb;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const mb = await residentMb(pid);
          if (mb !== null) loadPeakMb = Math.max(loadPeakMb, mb);
          await sleep(50);
        }
      })();
      try {
        await h.runMission("memory-noop-load", noopWidePlan(opts.slots * opts.rounds), 300_000);
        await h.runMission("memory-model-load", modelWidePlan(opts.slots * opts.rounds), 300_000);
      } finally {
        sampling = false;
        await sampler;
      }
      const highWaterMb = (await peakResidentMb(pid)) ?? NaN;
      await sleep(opts.idleSettleMs);
      const idleAfterMb = (await residentMb(pid)) ?? NaN;
      return {
        referenceMb,
        idleMb,
        loadPeakMb,
        highWaterMb,
        idleAfterMb,
        orchestratorIdleMb,
        replicaCompiled,
      };
    } finally {
      await workers.stop();
    }
  } finally {
    await h.close();
    await model.close();
  }
}

export function memorySection(m: MemoryFigures, opts: MemoryOptions, durationMs: number): Section {
  const ref = {
    label: "bare Node + one NATS connection",
    value: m.referenceMb,
    unit: "MB" as const,
  };
  const fig = (key: string, name: string, value: number, limit?: number) => ({
    key,
    name,
    value,
    unit: "MB" as const,
    reference: ref,
    ratio: value / m.referenceMb,
    ...(limit !== undefined ? { target: atMost(Number(value.toFixed(1)), limit, "MB") } : {}),
  });
  return {
    id: "memory",
    title: "6. Memory of a worker replica",
    durationMs,
    figures: [
      fig("memory.idle", "worker replica RSS, idle (started, pulling, no task yet)", m.idleMb, 80),
      fig(
        "memory.load",
        `worker replica RSS, peak under load (${opts.slots} slots busy)`,
        m.loadPeakMb,
      ),
      fig("memory.hwm", "worker replica VmHWM (kernel's peak) after the load", m.highWaterMb),
      fig("memory.idle.after", "worker replica RSS, idle again after the load", m.idleAfterMb),
      fig("memory.orchestrator", "orchestrator RSS, idle", m.orchestratorIdleMb),
      ...m.imports.map((i, n) =>
        fig(
          `memory.import.${n}`,
          `fresh Node, imported ${n && !i.alone ? "+ " : ""}${i.what}`,
          i.mb,
        ),
      ),
    ],
    notes: [
      `One replica (\`swarm worker --agent builder --concurrency ${opts.slots}\`), sampled every ` +
        `50 ms from /proc/<pid>/status while it ran ${opts.slots * opts.rounds} no-op tasks, then ` +
        `${opts.slots * opts.rounds} model-bound tasks (fake model, ${opts.callMs} ms per call). ` +
        `The first model task loads LangChain, which the idle figure does not include. ` +
        `The replica runs as the launcher runs it: compiled (dist/) when the build matches the ` +
        `sources, else from the sources; this one ran ` +
        `${m.replicaCompiled ? "compiled" : "from the sources (the build did not match them)"}.`,
      m.imports.length
        ? `Where idle memory comes from: RSS of fresh Node processes (after a GC), each importing ` +
          `one more part than the one before: ` +
          `${m.imports.map((i) => `${i.alone ? "instead, " : ""}${i.what}: ${i.mb.toFixed(0)} MB`).join("; ")} ` +
          `(bare Node with one NATS connection: ${m.referenceMb.toFixed(0)} MB).`
        : "Where idle memory comes from is measured in the full run only.",
    ],
  };
}
