import { describe, expect, it } from "vitest";
import {
  formatNumber,
  median,
  percentile,
  ratePerSecond,
  ratio,
  summarize,
} from "../../src/bench/stats.ts";

describe("median", () => {
  it("is the middle sample, or the mean of the middle two; none is an error", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });
});

describe("percentile (nearest rank)", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted

  it("returns a sample, never an interpolation", () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile([1, 2], 50)).toBe(1);
    expect(percentile([1, 2], 51)).toBe(2);
  });

  it("p99 of a small sample is its maximum", () => {
    expect(percentile([3, 1, 2], 99)).toBe(3);
  });

  it("does not reorder the caller's array", () => {
    const xs = [3, 1, 2];
    percentile(xs, 50);
    expect(xs).toEqual([3, 1, 2]);
  });

  it("refuses no samples and out-of-range percentiles", () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(/0-100/);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe("summarize", () => {
  it("agrees with percentile and computes min, max and mean", () => {
    const xs = [5, 1, 4, 2, 3, 10, 7, 8, 6, 9];
    const s = summarize(xs);
    expect(s).toMatchObject({ n: 10, min: 1, max: 10, mean: 5.5 });
    expect(s.p50).toBe(percentile(xs, 50));
    expect(s.p90).toBe(percentile(xs, 90));
    expect(s.p99).toBe(percentile(xs, 99));
  });

  it("refuses no samples", () => {
    expect(() => summarize([])).toThrow(RangeError);
  });
});

describe("rates and ratios", () => {
  it("ratePerSecond converts a count over milliseconds", () => {
    expect(ratePerSecond(500, 250)).toBe(2000);
    expect(() => ratePerSecond(1, 0)).toThrow(RangeError);
    expect(() => ratePerSecond(1, -5)).toThrow(RangeError);
  });

  it("ratio is value ÷ reference, null without a usable reference", () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(3, 0)).toBeNull();
    expect(ratio(3, null)).toBeNull();
    expect(ratio(3, undefined)).toBeNull();
    expect(ratio(Number.NaN, 2)).toBeNull();
  });

  it("formatNumber keeps about three significant digits", () => {
    expect(formatNumber(1234.5)).toBe("1235");
    expect(formatNumber(12.345)).toBe("12.3");
    expect(formatNumber(1.2345)).toBe("1.23");
    expect(formatNumber(0.012345)).toBe("0.012");
    expect(formatNumber(0)).toBe("0");
  });
});
