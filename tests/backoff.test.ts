import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay } from "../src/backoff.ts";

describe("backoff with full jitter", () => {
  it.each([
    [1, 1000, 60_000, 1000],
    [2, 1000, 60_000, 2000],
    [4, 1000, 60_000, 8000],
    [7, 1000, 60_000, 60_000],
    [0, 250, 5000, 250],
    [30, 250, 5000, 5000],
  ])("retry %i of base %i, max %i: at most %i ms", (attempt, base, max, ceiling) => {
    expect(backoffCeiling(attempt, base, max)).toBe(ceiling);
    expect(backoffDelay(attempt, base, max, 0)).toBe(0);
    expect(backoffDelay(attempt, base, max, 0.5)).toBe(Math.round(ceiling / 2));
  });

  it("draws each delay anywhere in [0, ceiling], so retries that started together spread out", () => {
    const delays = Array.from({ length: 200 }, () => backoffDelay(3, 1000, 60_000));
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(0);
    for (const d of delays) expect(d).toBeLessThanOrEqual(4000);
    expect(new Set(delays).size).toBeGreaterThan(20);
  });
});
