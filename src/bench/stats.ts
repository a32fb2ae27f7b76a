/**
 * Pure helpers for benchmark figures: percentiles, rates and ratios. Nothing
 * here reads a clock; callers pass the samples.
 */

export interface LatencySummary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The p-th percentile (0 <= p <= 100) of samples by the nearest-rank method:
 * the smallest sample such that at least p% of the samples are <= it. Always
 * one of the samples, never an interpolation between two.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError("percentile of no samples");
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be 0-100, got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** The middle sample (the mean of the middle two for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError("median of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) throw new RangeError("summary of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
  const sum = sorted.reduce((s, x) => s + x, 0);
  return {
    n: sorted.length,
    min: sorted[0]!,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** Items per second; throws on a non-positive duration (a broken measurement, not a fast one). */
export function ratePerSecond(count: number, durationMs: number): number {
  if (!(durationMs > 0)) throw new RangeError(`duration must be > 0 ms, got ${durationMs}`);
  return (count * 1000) / durationMs;
}

/** value ÷ reference, or null when the reference is zero or missing. */
export function ratio(value: number, reference: number | null | undefined): number | null {
  if (reference === null || reference === undefined || reference === 0) return null;
  if (!Number.isFinite(value) || !Number.isFinite(reference)) return null;
  return value / reference;
}

/** A number with about three significant digits, for tables (1234 → "1234", 1.234 → "1.23"). */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return String(Math.round(x));
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return "0";
  return x.toPrecision(2);
}
