import { describe, expect, it } from "vitest";
import type { ProfileSummary } from "../../src/bench/cpu-profile.ts";
import {
  limitsText,
  renderMarkdown,
  renderTable,
  type BenchReport,
} from "../../src/bench/report.ts";
import { atLeast, atMost, type Section } from "../../src/bench/results.ts";
import { escapeXml, niceCeil, panelsFromSections, renderPlot } from "../../src/bench/svg-plot.ts";

const sections: Section[] = [
  {
    id: "dispatch",
    title: "2. Dispatch latency",
    durationMs: 1000,
    notes: ["A chain of tasks."],
    figures: [
      {
        key: "dispatch.p50",
        name: "task_assigned → task_started, p50",
        value: 3,
        unit: "ms",
        reference: { label: "raw round trip p50", value: 1, unit: "ms" },
        ratio: 3,
        target: atMost(3, 2, "ms"),
      },
    ],
  },
  {
    id: "throughput",
    title: "3. Throughput",
    durationMs: 1000,
    notes: [],
    figures: [
      ...[1, 2, 4].map((r) => ({
        key: `throughput.replicas.${r}`,
        name: `no-op tasks/s, ${r} replicas`,
        value: 40 * r,
        unit: "tasks/s" as const,
        ...(r === 4 ? { target: atLeast(160, 2000, "tasks/s") } : {}),
      })),
      { key: "throughput.large.4000", name: "4000-task mission", value: 150, unit: "tasks/s" },
      { key: "throughput.shell.replicas.4", name: "shell, 4", value: 20, unit: "tasks/s" },
      { key: "throughput.unsandboxed", name: "shell, 4, no sandbox", value: 60, unit: "tasks/s" },
      { key: "throughput.step.100", name: "step 100", value: 900, unit: "µs" },
      { key: "throughput.step.1000", name: "step 1000", value: 11000, unit: "µs" },
      {
        key: "throughput.runstep",
        name: "run step",
        value: 6,
        unit: "ms",
        reference: { label: "bare spawn", value: 2, unit: "ms" },
        ratio: 3,
      },
    ],
  },
  {
    id: "model",
    title: "4. Model-bound | scaling",
    durationMs: 1000,
    notes: [],
    figures: [1, 32].map((s) => ({
      key: `model.slots.${s}`,
      name: `${s} slots`,
      value: 2 * s * 0.9,
      unit: "tasks/s" as const,
      reference: { label: "ideal", value: 2.5 * s, unit: "tasks/s" as const },
      ratio: 0.72,
    })),
  },
  {
    id: "memory",
    title: "6. Memory",
    durationMs: 5,
    notes: [],
    figures: [
      {
        key: "memory.idle",
        name: "idle",
        value: 120,
        unit: "MB",
        target: atMost(120, 80, "MB"),
      },
      ...[
        ["nothing (bare Node)", 42],
        ["the NATS client", 56],
        ["the schemas", 80],
        ["the worker runtime", 110],
      ].map(([what, mb], i) => ({
        key: `memory.import.${i}`,
        name: `fresh Node, imported ${i ? "+ " : ""}${what}`,
        value: mb as number,
        unit: "MB" as const,
        reference: { label: "bare", value: 50, unit: "MB" as const },
      })),
    ],
    error: "boom\nstack",
  },
];

const profile = (names: Array<[string, string, number]>): ProfileSummary => ({
  totalMs: 1000,
  busyMs: 800,
  byPlace: names.map(([, place, share]) => ({ name: place, ms: share * 800, share })),
  byFunction: names.map(([fn, , share]) => ({ name: fn, ms: share * 800, share })),
  ownInclusive: [],
});

const report: BenchReport = {
  sections,
  machine: {
    cpuModel: "Test CPU",
    cores: 2,
    memoryGb: 24,
    os: "Linux",
    node: "v24.0.0",
    natsServer: "v2.9.10",
    sandbox: "bwrap not installed",
    date: "2026-01-01T00:00:00.000Z",
  },
  load: {
    before: { load1: 3, busy: 0.9 },
    during: { load1: 3, busy: 0.95 },
    load1Start: 3,
    load1End: 4,
  },
  command: "scripts/bench",
  quick: false,
  totalMs: 300_000,
  profile: {
    noop: {
      orchestrator: profile([
        ["structuredClone node:internal/worker:113", "node:internal/worker", 0.6],
      ]),
      workers: profile([
        ["spawn node:internal/child_process:1", "node:internal/child_process", 0.4],
      ]),
      tasks: 400,
    },
    model: { workers: profile([["x @langchain/core:1", "@langchain/core", 0.3]]), tasks: 128 },
  },
  plotPath: "benchmarks.svg",
};

describe("targets", () => {
  it("say whether a figure meets its target, and by how much it misses", () => {
    expect(atMost(1.5, 2, "ms")).toEqual({ text: "≤ 2 ms", met: true });
    expect(atMost(3, 2, "ms")).toMatchObject({ met: false, miss: "1.50× the limit" });
    expect(atMost(1.055, 1.05, "×")).toMatchObject({ met: false, miss: "0.5% over" });
    expect(atLeast(500, 2000, "tasks/s")).toMatchObject({ met: false, miss: "25% of the target" });
    expect(atLeast(0.96, 0.95, "efficiency").met).toBe(true);
  });
});

describe("renderTable", () => {
  it("has one row per figure, with reference, ratio and target, and marks failed benchmarks", () => {
    const table = renderTable(sections);
    expect(table).toMatch(
      /task_assigned → task_started, p50\s+3\.00 ms\s+raw round trip p50: 1\.00 ms\s+3\.00×\s+≤ 2 ms: MISSED \(1\.50× the limit\)/,
    );
    expect(table).toContain("[6. Memory] (incomplete)");
    expect(table).toContain("error: boom");
    expect(table).not.toContain("stack");
  });
});

describe("renderMarkdown", () => {
  const md = renderMarkdown(report);

  it("states the command, the machine and the load", () => {
    expect(md).toContain("```\nscripts/bench\n```");
    expect(md).toContain("| CPU | Test CPU, 2 cores |");
    expect(md).toContain("| nats-server | v2.9.10 |");
    expect(md).toContain("90% of all cores");
    expect(md).toMatch(/machine was busy with other work/);
  });

  it("has every figure in the results table, escaping pipes", () => {
    for (const s of sections) for (const f of s.figures) expect(md).toContain(f.name);
    expect(md).toContain("4. Model-bound \\| scaling");
    expect(md).toContain("**did not finish**: boom");
    expect(md).toContain("fresh Node, imported + the schemas");
    expect(md).toContain("![throughput and model-bound efficiency](benchmarks.svg)");
  });

  it("explains each missed target with the profile's shares", () => {
    const limits = limitsText(report).join("\n");
    expect(limits).toContain("task_assigned → task_started, p50");
    expect(limits).toContain("no-op tasks/s, 4 replicas");
    expect(limits).toMatch(/900 µs in a 100-task[^]*11000 µs in a 1,000-task[^]*worker 60%/);
    expect(limits).toMatch(/6\.00 ms of CPU[^]*3\.00× a bare[^]*spawning is 40%/);
    expect(limits).toContain(
      "a 4,000-task mission ran at 150 tasks/s against 160 tasks/s for the smaller one",
    );
    expect(limits).toMatch(/one shell command per task and bubblewrap[^]*20\.0 tasks\/s[^]*60\.0/);
    expect(limits).toContain(
      "nothing (bare Node) is 42.0 MB, then: the NATS client +14 MB, the schemas +24 MB, " +
        "the worker runtime +30 MB",
    );
  });

  it("says whether model-bound tasks wait for CPU or for the event loop", () => {
    const modelReport = (cpuMs: number): BenchReport => ({
      ...report,
      profile: null,
      sections: [
        {
          id: "model",
          title: "4. Model-bound scaling",
          durationMs: 1000,
          notes: [],
          figures: [
            {
              key: "model.slots.32",
              name: "32 slots",
              value: 50,
              unit: "tasks/s",
              reference: { label: "ideal", value: 80, unit: "tasks/s" },
              ratio: 0.625,
              target: atLeast(0.625, 0.95, "×"),
            },
            { key: "model.cpu", name: "cpu per task", value: cpuMs, unit: "ms" },
            { key: "model.busy", name: "on a CPU", value: 60, unit: "%" },
          ],
        },
      ],
    });
    // 80 tasks/s × 10 ms = 80% of a core: enough CPU on average, so the loss is queueing.
    expect(limitsText(modelReport(10)).join("\n")).toMatch(
      /10\.0 ms of CPU per task\. That would keep one core 80% busy[^]*wait in line/,
    );
    // 20 ms per task caps one replica at 50 tasks/s, under the 80 of the ideal.
    expect(limitsText(modelReport(20)).join("\n")).toMatch(
      /can serve at most 50\.0 tasks\/s[^]*63% of the 32-slot ideal/,
    );
  });

  it("says so when every target was met", () => {
    const good = limitsText({ ...report, sections: [sections[2]!], profile: null });
    expect(good).toEqual(["Every target was met in this run."]);
  });
});

describe("the SVG plot", () => {
  it("rounds an axis top up to 1, 2, 2.5 or 5 times a power of ten", () => {
    expect(niceCeil(0.9)).toBe(1);
    expect(niceCeil(1.2)).toBe(2);
    expect(niceCeil(2.2)).toBe(2.5);
    expect(niceCeil(37)).toBe(50);
    expect(niceCeil(0)).toBe(1);
  });

  it("has a panel per measured benchmark with one bar per point", () => {
    const panels = panelsFromSections(sections);
    expect(panels.map((p) => p.title)).toEqual([
      "No-op throughput by replicas",
      "Model-bound efficiency by slots",
    ]);
    expect(panels[0]!.bars.map((b) => b.value)).toEqual([40, 80, 160]);
    expect(panels[1]!.bars.map((b) => b.value)).toEqual([0.72, 0.72]);
    const svg = renderPlot(panels, "caption <&>");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/class="bar"/g)).toHaveLength(5);
    expect(svg).toContain("caption &lt;&amp;&gt;");
    // The throughput target (2000) is far above the bars: noted, not drawn.
    expect(svg).toContain("target 2000/s (4 rep.) (above the scale)");
    expect(svg).toContain("target 0.95<");
  });

  it("escapes XML", () => {
    expect(escapeXml(`a<b & "c">`)).toBe("a&lt;b &amp; &quot;c&quot;&gt;");
  });
});
