/**
 * The benchmark plot: a hand-written SVG of bar panels (throughput by
 * replica count, model-bound efficiency by slot count, makespan ÷ critical
 * path), each with its target as a dashed line. Pure: data in, text out.
 */
import type { Section } from "./results.ts";
import { formatNumber } from "./stats.ts";

export interface Bar {
  label: string;
  value: number;
}

export interface Panel {
  title: string;
  /** Axis caption, e.g. "tasks/s". */
  unit: string;
  bars: Bar[];
  /** Reference lines (targets, bounds). A line above the scale is noted, not drawn. */
  lines: Array<{ value: number; label: string }>;
  /** Top of the scale; default: a round number above the largest bar or line. */
  max?: number;
}

const PANEL_W = 320;
const PANEL_H = 220;
const GAP = 16;
const PAD = { top: 44, bottom: 40, left: 44, right: 70 };

/** The smallest of 1, 2, 2.5, 5 × 10^k that is >= x: a round top for an axis. */
export function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x * (1 - 1e-12)) return m * p;
  return 10 * p;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function panelSvg(p: Panel, x0: number): string {
  const plotW = PANEL_W - PAD.left - PAD.right;
  const plotH = PANEL_H - PAD.top - PAD.bottom;
  const largest = Math.max(0, ...p.bars.map((b) => b.value));
  // Lines far above the bars would squash them: such a line is written as text instead.
  const drawn = p.lines.filter(
    (l) => p.max !== undefined || l.value <= Math.max(largest, 1e-9) * 3,
  );
  const max = p.max ?? niceCeil(Math.max(1e-9, largest, ...drawn.map((l) => l.value)) * 1.1);
  const y = (v: number) => PAD.top + plotH - (Math.min(v, max) / max) * plotH;
  const out: string[] = [`<g transform="translate(${x0},0)">`];
  out.push(
    `<text x="${PANEL_W / 2}" y="18" text-anchor="middle" font-weight="bold">${escapeXml(p.title)}</text>`,
    `<text x="${PAD.left}" y="${PAD.top - 8}" font-size="10" fill="#555">${escapeXml(p.unit)}</text>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#333"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${PAD.left + plotW}" y2="${PAD.top + plotH}" stroke="#333"/>`,
  );
  for (const tick of [0, max / 2, max]) {
    out.push(
      `<text x="${PAD.left - 4}" y="${y(tick) + 3}" text-anchor="end" font-size="9" fill="#555">${escapeXml(formatNumber(tick))}</text>`,
    );
  }
  const n = Math.max(1, p.bars.length);
  const slot = plotW / n;
  const bw = Math.min(40, slot * 0.7);
  p.bars.forEach((b, i) => {
    const cx = PAD.left + slot * i + slot / 2;
    const top = y(b.value);
    out.push(
      `<rect class="bar" x="${(cx - bw / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" ` +
        `height="${(PAD.top + plotH - top).toFixed(1)}" fill="#4a7bd0"/>`,
      `<text x="${cx.toFixed(1)}" y="${(top - 3).toFixed(1)}" text-anchor="middle" font-size="9">${escapeXml(formatNumber(b.value))}</text>`,
      `<text x="${cx.toFixed(1)}" y="${PAD.top + plotH + 14}" text-anchor="middle" font-size="10">${escapeXml(b.label)}</text>`,
    );
  });
  let noteY = PAD.top + plotH + 30;
  for (const l of p.lines) {
    if (drawn.includes(l)) {
      const ly = y(l.value).toFixed(1);
      out.push(
        `<line x1="${PAD.left}" y1="${ly}" x2="${PAD.left + plotW}" y2="${ly}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
        `<text x="${PAD.left + plotW + 3}" y="${(Number(ly) + 3).toFixed(1)}" font-size="9" fill="#c0392b">${escapeXml(l.label)}</text>`,
      );
    } else {
      out.push(
        `<text x="${PAD.left}" y="${noteY}" font-size="9" fill="#c0392b">${escapeXml(`${l.label} (above the scale)`)}</text>`,
      );
      noteY += 11;
    }
  }
  out.push("</g>");
  return out.join("\n");
}

export function renderPlot(panels: readonly Panel[], caption: string): string {
  const width = panels.length * PANEL_W + (panels.length - 1) * GAP;
  const height = PANEL_H + 28;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((p, i) => panelSvg(p, i * (PANEL_W + GAP))),
    `<text x="6" y="${height - 8}" font-size="9" fill="#555">${escapeXml(caption)}</text>`,
    "</svg>",
    "",
  ].join("\n");
}

/** The panels of a run, from the figures' keys; a benchmark that did not run has no panel. */
export function panelsFromSections(sections: readonly Section[]): Panel[] {
  const figures = sections.flatMap((s) => s.figures);
  const panels: Panel[] = [];
  const tp = figures.filter((f) => /^throughput\.replicas\.\d+$/.test(f.key));
  if (tp.length) {
    panels.push({
      title: "No-op throughput by replicas",
      unit: "tasks/s",
      bars: tp.map((f) => ({ label: `${f.key.split(".").pop()} rep.`, value: f.value })),
      lines: [{ value: 2000, label: "target 2000/s (4 rep.)" }],
    });
  }
  const eff = figures.filter(
    (f) => /^model\.slots\.\d+$/.test(f.key) && typeof f.ratio === "number",
  );
  if (eff.length) {
    panels.push({
      title: "Model-bound efficiency by slots",
      unit: "achieved ÷ ideal",
      bars: eff.map((f) => ({ label: f.key.split(".").pop()!, value: f.ratio as number })),
      lines: [{ value: 0.95, label: "target 0.95" }],
      max: 1,
    });
  }
  const ms = ["makespan.dag", "makespan.barrier", "makespan.langgraph"]
    .map((k) => figures.find((f) => f.key === k))
    .filter((f) => f !== undefined && typeof f.ratio === "number");
  if (ms.length) {
    const label: Record<string, string> = {
      "makespan.dag": "ours (DAG)",
      "makespan.barrier": "ours (waves)",
      "makespan.langgraph": "LangGraph",
    };
    panels.push({
      title: "Makespan ÷ critical path",
      unit: "× critical path",
      bars: ms.map((f) => ({ label: label[f!.key]!, value: f!.ratio as number })),
      lines: [
        { value: 1.05, label: "target 1.05" },
        { value: 1, label: "" },
      ],
    });
  }
  return panels;
}
