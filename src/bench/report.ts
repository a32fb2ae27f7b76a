/**
 * Renders benchmark results: a plain-text table for the terminal and the
 * Markdown of docs/benchmarks.md. Pure: everything it shows comes in as data.
 */
import { describeShares, type ProfileShare, type ProfileSummary } from "./cpu-profile.ts";
import type { LoadSample, MachineFacts } from "./machine.ts";
import type { Figure, Section } from "./results.ts";
import { scaleModelText } from "./scale-model-text.ts";
import { formatNumber } from "./stats.ts";

export interface BenchReport {
  sections: Section[];
  machine: MachineFacts;
  /** CPU use of the machine just before the run (other users), and over the whole run. */
  load: { before: LoadSample; during: LoadSample; load1Start: number; load1End: number };
  command: string;
  quick: boolean;
  totalMs: number;
  profile: {
    noop: { orchestrator: ProfileSummary | null; workers: ProfileSummary | null; tasks: number };
    model: { workers: ProfileSummary | null; tasks: number };
  } | null;
  /** Relative path of the plot from the Markdown file, or null for none. */
  plotPath: string | null;
}

export function formatValue(value: number, unit: string): string {
  if (unit === "×") return `${formatNumber(value)}×`;
  if (unit === "%") return `${formatNumber(value)}%`;
  return `${formatNumber(value)} ${unit}`;
}

function ratioText(f: Figure): string {
  if (f.ratio === undefined || f.ratio === null) return "";
  return `${formatNumber(f.ratio)}×`;
}

function referenceText(f: Figure): string {
  return f.reference
    ? `${f.reference.label}: ${formatValue(f.reference.value, f.reference.unit)}`
    : "";
}

function targetText(f: Figure): string {
  if (!f.target) return "";
  return f.target.met ? `${f.target.text}: met` : `${f.target.text}: MISSED (${f.target.miss})`;
}

/** A fixed-width table for the terminal. */
export function renderTable(sections: readonly Section[]): string {
  const rows: string[][] = [["figure", "value", "reference", "ratio", "target"]];
  const lines: string[] = [];
  for (const s of sections) {
    rows.push([`[${s.title}]${s.error ? " (incomplete)" : ""}`, "", "", "", ""]);
    for (const f of s.figures) {
      rows.push([
        `  ${f.name}`,
        formatValue(f.value, f.unit),
        referenceText(f),
        ratioText(f),
        targetText(f),
      ]);
    }
    if (s.error) rows.push([`  error: ${s.error.split("\n")[0]}`, "", "", "", ""]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) {
    lines.push(
      r
        .map((cell, c) =>
          c === 1 || c === 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!),
        )
        .join("  ")
        .trimEnd(),
    );
  }
  return lines.join("\n");
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function pct(x: number | null): string {
  return x === null ? "n/a" : `${(x * 100).toFixed(0)}%`;
}

function shareOf(shares: ProfileShare[] | undefined, match: (name: string) => boolean): number {
  return (shares ?? []).filter((s) => match(s.name)).reduce((a, s) => a + s.share, 0);
}

function find(report: BenchReport, key: string): Figure | undefined {
  for (const s of report.sections) {
    const f = s.figures.find((x) => x.key === key);
    if (f) return f;
  }
  return undefined;
}

/** Paragraphs on each missed target: by how much, what limits it (measured), what would close it. */
export function limitsText(report: BenchReport): string[] {
  const out: string[] = [];
  const p = report.profile;
  const orch = p?.noop.orchestrator;
  const work = p?.noop.workers;
  const fig = (key: string) => find(report, key);
  const val = (key: string) => {
    const f = fig(key);
    return f ? formatValue(f.value, f.unit) : null;
  };
  const missed = report.sections.flatMap((s) =>
    s.figures.filter((f) => f.target && !f.target.met).map((f) => ({ s, f })),
  );
  if (!missed.length) out.push("Every target was met in this run.");
  for (const { f } of missed) {
    out.push(
      `- **${f.name}**: ${formatValue(f.value, f.unit)}` +
        `${f.ratio !== undefined && f.ratio !== null ? ` (ratio ${formatNumber(f.ratio)})` : ""}; ` +
        `target ${f.target!.text}, ${f.target!.miss}.`,
    );
  }
  const missedKey = (prefix: string) => missed.some(({ f }) => f.key.startsWith(prefix));

  if (missedKey("dispatch.")) {
    const deliver = fig("raw.deliver.p50");
    const rtt = fig("raw.rtt.p50");
    const floor = deliver && rtt ? deliver.value + rtt.value : null;
    out.push(
      `**What limits dispatch latency.** Between task_assigned and task_started the worker ` +
        `decodes and validates the event (zod), claims the attempt in KV (a JetStream round ` +
        `trip), then builds and validates task_started (once: the publisher does not parse ` +
        `again an event makeEvent built) and publishes it` +
        (floor !== null
          ? `: its floor on this machine is about one delivery plus one round trip, ` +
            `${formatValue(floor, "ms")} from the raw figures`
          : "") +
        `. The rest is CPU on a shared two-core machine: the zod passes, the worker's other ` +
        `slots and the orchestrator competing for the same cores, which is also what the p99 ` +
        `shows. What would close it: less CPU per event (the two zod passes, the JSON) and a ` +
        `core that is free when the task arrives; the claim's KV round trip is the only wait.`,
    );
  }
  if (missedKey("throughput.") || missedKey("dispatch.")) {
    const parts = ["**What limits dispatch and throughput.** Per task, measured in this run:"];
    const large = report.sections
      .flatMap((s) => s.figures)
      .find((f) => f.key.startsWith("throughput.large."));
    const step100 = val("throughput.step.100");
    const step1000 = val("throughput.step.1000");
    if (step100 && step1000) {
      parts.push(
        `(a) the orchestrator: one step of the mission machine costs ${step100} in a 100-task ` +
          `mission and ${step1000} in a 1,000-task one (copy-on-write: a step copies only what ` +
          `it changes, so its cost does not grow with the mission), two steps per task, plus ` +
          `decoding and validating each event and publishing each dispatch` +
          (orch ? ` (its profile: ${describeShares(orch.byPlace, 6)})` : "") +
          (large && fig("throughput.replicas.4")
            ? `; with the same 4 replicas, a ` +
              `${Number(large.key.split(".").pop()).toLocaleString("en")}-task mission ran at ` +
              `${formatValue(large.value, large.unit)} against ${val("throughput.replicas.4")} ` +
              `for the smaller one`
            : "") +
          ";",
      );
    }
    const runStep = fig("throughput.runstep");
    if (runStep) {
      const spawnShare = shareOf(
        work?.byPlace,
        (n) => n === "node:internal/child_process" || n === "execa",
      );
      parts.push(
        `(b) every run step is a new process: \`runShell\` (execa, \`/bin/bash -c\`) costs ` +
          `${formatValue(runStep.value, runStep.unit)} of CPU in the calling process per ` +
          `command without a sandbox, ${formatNumber(runStep.ratio ?? NaN)}× a bare ` +
          `\`child_process.spawn\` (${formatValue(runStep.reference!.value, "ms")}); fork is ` +
          `synchronous in libuv and grows with the parent's memory` +
          (work ? ` (spawning is ${pct(spawnShare)} of the workers' busy time)` : "") +
          ";",
      );
    }
    const sandboxed = fig("throughput.shell.replicas.4");
    const bare = fig("throughput.unsandboxed");
    if (sandboxed && bare) {
      parts.push(
        `(c) the shell sandbox: with one shell command per task and bubblewrap (the default ` +
          `when it works) 4 replicas ran ${formatValue(sandboxed.value, sandboxed.unit)}, with ` +
          `\`SWARM_SANDBOX=none\` ${formatValue(bare.value, bare.unit)};`,
      );
    }
    if (work) {
      const groupScan = shareOf(work.ownInclusive, (n) => n.startsWith("groupAlive "));
      if (groupScan >= 0.03) {
        parts.push(
          `(d) when a command leaves processes behind, the shell tool polls whether its process ` +
            `group is gone by reading /proc/<pid>/stat of every process on the machine every ` +
            `25 ms (\`groupAlive\` in src/tools/shell.ts): ${pct(groupScan)} of the workers' busy ` +
            `time inclusive, plus file reads resumed after its awaits (shown as native ` +
            `read/fstat/open/close below);`,
        );
      }
    }
    parts.push(
      "and the event path: zod validation of every event on both sides, a KV claim round trip, " +
        "task_started and the result each awaited for its PubAck (task_progress, one per step, " +
        "does not hold the work up), then the claim marked done and the ack, together. The raw " +
        "JetStream figures above show the bus itself is not the limit.",
    );
    out.push(parts.join(" "));
    out.push(
      "**What would close it.** The target is judged on `run: []` tasks, which run nothing: " +
        "what they cost is the swarm's own per-task work: in the worker, decode and " +
        "validate the task, a KV claim, task_started and the result each awaited for its " +
        "PubAck, the claim marked done, the ack; then the orchestrator's share and " +
        "nats-server's, all on the same two cores (their CPU shares are in section 3). " +
        "2,000 tasks/s leaves 1 ms " +
        "of CPU per task for all of it: the remaining gap is CPU per event (the NATS client " +
        "builds an Error with a stack for every request; JSON and zod on both sides) and the " +
        "fixed cost of the claim's KV round trips; batching several tasks' events per publish " +
        "would close most of it, at the price of the one-event-per-message contract. Tasks " +
        "that run a shell command are another matter: a process per run step is the point " +
        "(isolation), and a bare spawn of bash alone costs more CPU than that budget (above).",
    );
  }
  if (missedKey("model.")) {
    const run = fig("model.run");
    const cpu = fig("model.cpu");
    const busy = fig("model.busy");
    const single32 = fig("model.slots.32");
    const ideal32 = single32?.reference?.value;
    const split = report.sections
      .flatMap((s) => s.figures)
      .find((f) => f.key.startsWith("model.split."));
    const mw = p?.model.workers;
    out.push(
      `**What limits model-bound scaling.** The model calls do overlap (see the calls in flight ` +
        `in section 4); what grows is the time around them` +
        (run
          ? `: at the most slots a task took ${formatValue(run.value, run.unit)} from ` +
            `task_started to its result, for ${formatValue(run.reference!.value, "ms")} of model time`
          : "") +
        `. The slots are full (section 4 gives how busy they were): each task is slow because ` +
        `one replica is one event loop, which per task runs LangChain's graph steps, ` +
        `callbacks and message handling, the tool call, and the events, all on one core` +
        (cpu ? `: ${formatValue(cpu.value, cpu.unit)} of CPU per task` : "") +
        (cpu && ideal32 && 1000 / cpu.value >= ideal32
          ? // CPU would suffice on average: the loss is waiting for the one event loop.
            `. That would keep one core ${pct((ideal32 * cpu.value) / 1000)} busy at the ` +
            `32-slot ideal rate; the answers come in bursts (every call takes the same time, ` +
            `so the slots move in step) and wait in line for the event loop, which is where ` +
            `the time beyond the model's goes` +
            (busy ? `; the worker was on a CPU ${formatValue(busy.value, "%")} of the run` : "")
          : cpu
            ? `, so one replica can serve at most ${formatNumber(1000 / cpu.value)} tasks/s ` +
              `even with a core to itself` +
              (ideal32 ? `, ${pct(1000 / cpu.value / ideal32)} of the 32-slot ideal` : "") +
              (busy && ideal32 && single32?.ratio
                ? `; and it was on a CPU only ${formatValue(busy.value, "%")} of the run ` +
                  `(other processes had the rest of the two cores): ` +
                  `${formatNumber(1000 / cpu.value / ideal32)} × ${formatNumber(busy.value / 100)} = ` +
                  `${formatNumber((1000 / cpu.value / ideal32) * (busy.value / 100))}, against ` +
                  `${formatNumber(single32.ratio)} measured`
                : "")
            : "") +
        (mw ? ` (profile of its busy time: ${describeShares(mw.byPlace, 8)})` : "") +
        `. The agent graph and its tools are built once per replica already; what is left is ` +
        `LangChain's own work per graph step (in @langchain/core 1.x every runnable creates a ` +
        `langsmith RunTree to carry its config, even with tracing off). What would close it: ` +
        `fewer CPU milliseconds (graph steps) per task, or fewer slots per replica and more ` +
        `replicas, each with a core that is not shared with other work.` +
        (split && single32
          ? ` Splitting the same 32 slots over ${split.name.replace(/^.* as /, "")} reached ` +
            `${formatNumber(split.ratio ?? NaN)} of the ideal against ` +
            `${formatNumber(single32.ratio ?? NaN)} for one replica: ` +
            ((split.ratio ?? 0) > (single32.ratio ?? 0)
              ? "a second core helps."
              : "on this shared two-core machine a second replica finds no free core (the " +
                "orchestrator, nats-server, the fake model server and other users' work share them).")
          : ""),
    );
  }
  if (missedKey("makespan.")) {
    const hop = fig("dispatch.hop.p50");
    out.push(
      `**What limits the makespan.** Dependency-driven dispatch removes the wave barrier's ` +
        `cost (compare the rows in section 5); what is left is per edge of the critical path: ` +
        `one dispatch hop (result → orchestrator step → task_assigned → claim → task_started` +
        `${hop ? `; the orchestrator hop alone is ${formatValue(hop.value, hop.unit)} at p50` : ""}) ` +
        `plus the worker's CPU per model-bound task on a shared core. Less CPU per event ` +
        `shortens every hop.`,
    );
  }
  if (missedKey("memory.")) {
    const steps = report.sections
      .flatMap((s) => s.figures)
      .filter((f) => f.key.startsWith("memory.import."));
    const deltas = steps
      .map((f, i) => ({
        what: f.name.replace(/^fresh Node, imported (\+ )?/, ""),
        mb: i === 0 ? 0 : f.value - steps[i - 1]!.value,
      }))
      .slice(1)
      .filter((d) => d.mb > 0);
    out.push(
      `**What limits idle memory.** The floor is a bare Node process with one NATS connection ` +
        `(the reference)` +
        (deltas.length
          ? `; measured in fresh processes, ${steps[0]!.name.replace(/^fresh Node, imported /, "")} ` +
            `is ${formatValue(steps[0]!.value, "MB")}, then: ${deltas
              .map((d) => `${d.what} +${d.mb.toFixed(0)} MB`)
              .join(", ")}`
          : "") +
        `. Replicas already run the compiled build (no type stripper), load execa and ` +
        `LangChain only when a task first needs them, and give start-up garbage back with one ` +
        `memory-reducing collection once they are up (start-up grows V8's young generation to ` +
        `its maximum; without that collection an idle replica keeps about 9 MB more). What is ` +
        `left above the floor is mostly zod (about 4-8 MB) and the worker's own modules.`,
    );
  }
  return out;
}

function profileBlock(name: string, s: ProfileSummary | null | undefined): string[] {
  if (!s) return [`- ${name}: no profile was written.`];
  return [
    `- ${name} (${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s sampled):`,
    `  - by place: ${describeShares(s.byPlace, 8)}`,
    `  - hottest functions (self time): ${s.byFunction
      .slice(0, 6)
      .map((f) => `\`${f.name}\` ${(f.share * 100).toFixed(0)}%`)
      .join(", ")}`,
    `  - our functions, inclusive (synchronous stacks; work resumed after an \`await\` is not ` +
      `charged to its caller): ${s.ownInclusive
        .slice(0, 6)
        .map((f) => `\`${f.name}\` ${(f.share * 100).toFixed(0)}%`)
        .join(", ")}`,
  ];
}

export function renderMarkdown(report: BenchReport): string {
  const { machine: m, load } = report;
  const lines: string[] = [];
  const push = (...l: string[]) => lines.push(...l);
  push(
    "# Benchmarks",
    "",
    "<!-- Generated by `scripts/bench` (src/bench/); edit the generator, not this file. -->",
    "",
    "Speed is measured here, never asserted in tests. One command runs every benchmark on this " +
      "machine, each against its own nats-server (random port, temp store) with the real " +
      "orchestrator and worker processes, and writes this page. Every figure is given with its " +
      "ratio to a reference measured in the same run.",
    "",
    "```",
    report.command,
    "```",
    "",
    `${report.quick ? "**Quick mode** (small samples: indicative only). " : ""}` +
      `Run on ${m.date}, ${(report.totalMs / 1000).toFixed(0)} s in all.`,
    "",
    "## Machine and load",
    "",
    "| | |",
    "|---|---|",
    `| CPU | ${escapeCell(m.cpuModel)}, ${m.cores} cores |`,
    `| memory | ${m.memoryGb} GiB |`,
    `| OS | ${escapeCell(m.os)} |`,
    `| Node | ${m.node} |`,
    `| nats-server | ${escapeCell(m.natsServer)} |`,
    `| shell sandbox | ${escapeCell(m.sandbox)} |`,
    `| CPU busy just before the run (other users) | ${pct(load.before.busy)} of all cores |`,
    `| CPU busy during the run (all processes) | ${pct(load.during.busy)} of all cores |`,
    `| load average (1 min) at start / end | ${load.load1Start.toFixed(2)} / ${load.load1End.toFixed(2)} |`,
    "",
    // The load average lags a minute behind (it still counts what ran just before), so a
    // start above the core count, or other users' CPU measured just before, means busy.
    (load.before.busy ?? 0) > 0.15 || load.load1Start > m.cores
      ? "The machine was busy with other work while this ran (see the load above), so the " +
          "figures are noisy and lower than a quiet machine gives; the references were measured " +
          "under the same load, so the ratios are the fairer comparison. Re-run `scripts/bench` " +
          "on a quiet machine for cleaner figures."
      : "The machine was quiet when this ran.",
    "",
    "## Results",
    "",
    "| benchmark | figure | value | reference | ratio | target |",
    "|---|---|---:|---|---:|---|",
  );
  for (const s of report.sections) {
    for (const f of s.figures) {
      push(
        `| ${escapeCell(s.title)} | ${escapeCell(f.name)} | ${escapeCell(formatValue(f.value, f.unit))} | ` +
          `${escapeCell(referenceText(f))} | ${ratioText(f)} | ` +
          `${f.target ? escapeCell(f.target.met ? `${f.target.text} ✓` : `${f.target.text} ✗ ${f.target.miss}`) : ""} |`,
      );
    }
    if (s.error)
      push(
        `| ${escapeCell(s.title)} | **did not finish**: ${escapeCell(s.error.split("\n")[0] ?? "")} | | | | |`,
      );
  }
  push("");
  if (report.plotPath) push(`![throughput and model-bound efficiency](${report.plotPath})`, "");
  push("## How each figure was measured", "");
  for (const s of report.sections) {
    push(`### ${s.title}`, "", ...s.notes.flatMap((n) => [n, ""]));
    push(`(${(s.durationMs / 1000).toFixed(0)} s)`, "");
    if (s.error)
      push("**This benchmark did not finish:**", "", "```", s.error.slice(0, 2000), "```", "");
  }
  push(
    "## Targets: where they are missed and what limits them",
    "",
    ...limitsText(report).flatMap((p) => [p, ""]),
  );
  const scaleModel = scaleModelText(report.sections);
  if (scaleModel.length)
    push("## A scale model on paper", "", ...scaleModel.flatMap((p) => [p, ""]));
  if (report.profile) {
    push(
      "## Where the CPU goes (node --cpu-prof)",
      "",
      `Separate profiled runs (figures under the profiler are not reported above): ` +
        `${report.profile.noop.tasks} no-op tasks, and ${report.profile.model.tasks} model-bound tasks. ` +
        `Shares are of each process group's busy (non-idle) time over its whole life, start-up ` +
        `included (module loading shows as node:internal/modules and the type stripper's wasm); ` +
        `"(native)" is time in C++ builtins such as file reads, writes and process creation.`,
      "",
      ...profileBlock("orchestrator, no-op mission", report.profile.noop.orchestrator),
      ...profileBlock("workers, no-op mission", report.profile.noop.workers),
      ...profileBlock("worker, model-bound mission", report.profile.model.workers),
      "",
    );
  }
  push(
    "## Running it",
    "",
    "- `scripts/bench` (or `swarm bench`): everything, 2-7 minutes depending on the load; writes this page and " +
      "`docs/benchmarks.svg`.",
    "- `scripts/bench --quick`: the same benchmarks with small samples in under a minute; writes " +
      "to a temp directory unless `--out` is given.",
    "- `--only scale` runs step 11 alone (1, 2 and 4 orchestrators, 64 replicas on one " +
      "consumer, the R3 cluster; a few minutes) and, from its figures, the scale model.",
    "- `--only raw,dispatch,...` runs a subset (also to a temp directory unless `--out`); " +
      "`--no-profile` skips the profiled runs; " +
      "`SWARM_BENCH_KEEP=1` keeps the temp directories (logs, briefs).",
    "- Comparisons of two commits, run side by side in alternating rounds, are kept in " +
      "[benchmark-comparisons.md](benchmark-comparisons.md) (this page is regenerated; that one is not).",
    "",
  );
  return lines.join("\n");
}
