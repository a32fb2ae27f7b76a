/**
 * What a benchmark reports: figures, each with the reference measured in the
 * same run and the target when there is one. Plain data, rendered by
 * `report.ts` (tables, Markdown) and `svg-plot.ts`.
 */

export type Unit =
  "ms" | "msg/s" | "tasks/s" | "MB" | "×" | "s" | "µs" | "%" | "tasks" | "replicas";

export interface Reference {
  /** What the reference is, e.g. "raw JetStream publish → pull → ack p50". */
  label: string;
  value: number;
  unit: Unit;
}

export interface Target {
  /** As the issue states it, e.g. "≤ 2 ms". */
  text: string;
  met: boolean;
  /** How far off, in words, when missed ("3.2× the target"). */
  miss?: string;
}

export interface Figure {
  /** Stable key, used by the plot (e.g. "throughput.replicas.4"). */
  key: string;
  name: string;
  value: number;
  unit: Unit;
  reference?: Reference;
  /** value ÷ reference.value. */
  ratio?: number | null;
  target?: Target;
}

export interface Section {
  id: BenchId;
  title: string;
  figures: Figure[];
  /** How it was measured, what limited it: sentences for the docs. */
  notes: string[];
  durationMs: number;
  /** Set when the benchmark could not finish: the figures it has are partial. */
  error?: string;
}

export const BENCH_IDS = [
  "raw",
  "dispatch",
  "throughput",
  "model",
  "makespan",
  "memory",
  "tracing",
  "workspace",
  "status-history",
  "dashboard",
  "scale",
] as const;
export type BenchId = (typeof BENCH_IDS)[number];

/** "≤ limit" target for a figure where lower is better. */
export function atMost(value: number, limit: number, unit: string): Target {
  const met = value <= limit;
  const over = value / limit;
  return met
    ? { text: `≤ ${limit} ${unit}`, met }
    : {
        text: `≤ ${limit} ${unit}`,
        met,
        miss:
          over < 1.5 ? `${((over - 1) * 100).toFixed(1)}% over` : `${over.toFixed(2)}× the limit`,
      };
}

/** "≥ floor" target for a figure where higher is better. */
export function atLeast(value: number, floor: number, unit: string): Target {
  const met = value >= floor;
  return met
    ? { text: `≥ ${floor} ${unit}`.trim(), met }
    : {
        text: `≥ ${floor} ${unit}`.trim(),
        met,
        miss: `${((value / floor) * 100).toFixed(0)}% of the target`,
      };
}
