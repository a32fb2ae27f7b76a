/** What a result or a step becomes to fit the server's max_payload (pure: src/workers/result-size.ts). */
import { describe, expect, it } from "vitest";
import type { Step, TaskResult } from "../../src/schema/index.ts";
import {
  DEFAULT_MAX_PAYLOAD,
  HEADER_ALLOWANCE,
  fitResult,
  fitStep,
  jsonBytes,
  oversizedResult,
  payloadBudget,
} from "../../src/workers/result-size.ts";

const KB = 1024;

function step(i: number, over: Partial<Step> = {}): Step {
  return {
    tool: "run_shell",
    args: { command: `step-${i}` },
    ok: true,
    exit_code: 0,
    duration_ms: 1,
    output: "",
    ...over,
  };
}

function result(over: Partial<TaskResult> = {}): TaskResult {
  return {
    status: "succeeded",
    summary: "ran 1 step(s)",
    steps: [step(0)],
    verification: [],
    usage: { model: null, input_tokens: 0, output_tokens: 0 },
    attempt: 1,
    duration_ms: 5,
    worker: "builder/a",
    ...over,
  };
}

const big = (n: number, ch = "x") => ch.repeat(n);

describe("fitResult", () => {
  const rows: Array<{
    what: string;
    r: TaskResult;
    budget: number;
    fits: boolean;
    steps?: number;
    note?: RegExp;
  }> = [
    {
      what: "a small result is left as it is",
      r: result(),
      budget: 256 * KB,
      fits: true,
      steps: 1,
    },
    {
      what: "a 700 KB command in the step, the error and the summary: strings cut",
      r: result({
        status: "failed",
        summary: `run step 1 exited with code 1: ${big(700 * KB)}`,
        error: `run step 1 exited with code 1: ${big(700 * KB)}`,
        steps: [step(0, { args: { command: big(700 * KB) }, ok: false, exit_code: 1 })],
      }),
      budget: 256 * KB,
      fits: true,
      steps: 1,
      note: /\[result cut to fit the NATS payload limit\]$/,
    },
    {
      what: "1,000 steps of 4 KiB output: the middle of the list dropped",
      r: result({
        steps: Array.from({ length: 1000 }, (_, i) => step(i, { output: big(4 * KB) })),
      }),
      budget: 256 * KB,
      fits: true,
      steps: 40,
      note: /40 of 1000 steps kept/,
    },
    {
      what: "the same under a tiny limit: a handful of steps",
      r: result({
        steps: Array.from({ length: 1000 }, (_, i) => step(i, { output: big(4 * KB) })),
      }),
      budget: 8 * KB,
      fits: true,
      steps: 10,
    },
    {
      what: "many verify checks are cut like steps",
      r: result({
        verification: Array.from({ length: 500 }, (_, i) => ({
          command: `check-${i}`,
          ok: true,
          exit_code: 0,
          output: big(4 * KB),
        })),
      }),
      budget: 64 * KB,
      fits: true,
      note: /40 of 500 checks kept/,
    },
    {
      what: "a limit below what any result needs: does not fit",
      r: result({ summary: big(10 * KB) }),
      budget: 200,
      fits: false,
    },
  ];

  it.each(rows)("$what", ({ r, budget, fits, steps, note }) => {
    const out = fitResult(r, budget);
    expect(out.ok).toBe(fits);
    if (!out.ok) {
      expect(out.bytes).toBe(jsonBytes(r));
      return;
    }
    expect(jsonBytes(out.result)).toBeLessThanOrEqual(budget);
    expect(out.cut).toBe(out.result !== r);
    expect(out.result.status).toBe(r.status);
    if (steps !== undefined) expect(out.result.steps).toHaveLength(steps);
    if (note) expect(out.result.summary).toMatch(note);
    // The first and the last steps are the ones kept: what ran first, and what ended it.
    if (out.result.steps.length > 0 && r.steps.length > 1) {
      expect(out.result.steps[0]!.args.command).toBe(r.steps[0]!.args.command);
      expect(out.result.steps.at(-1)!.args.command).toBe(r.steps.at(-1)!.args.command);
    }
  });

  it("keeps the head of a cut string and says how much was cut", () => {
    const r = result({ steps: [step(0, { args: { command: `HEAD${big(700 * KB)}TAIL` } })] });
    const out = fitResult(r, 256 * KB);
    expect(out.ok).toBe(true);
    const command = out.ok ? String(out.result.steps[0]!.args.command) : "";
    expect(command).toMatch(/^HEAD/);
    expect(command).toMatch(/TAIL$/);
    expect(command).toMatch(/\[\.\.\. truncated \d+ bytes \.\.\.\]/);
  });
});

describe("fitStep", () => {
  it.each([
    ["a small step", step(0), 4 * KB, "same"],
    ["a 700 KB command", step(0, { args: { command: big(700 * KB) } }), 256 * KB, "cut"],
    ["a 20 MB output", step(0, { output: big(20 * 1024 * KB) }), 256 * KB, "cut"],
    ["a limit nothing fits", step(0, { output: big(10 * KB) }), 50, "none"],
  ] as const)("%s", (_what, s, budget, expected) => {
    const out = fitStep(s, budget);
    if (expected === "none") return expect(out).toBeNull();
    expect(out).not.toBeNull();
    expect(jsonBytes(out)).toBeLessThanOrEqual(budget);
    if (expected === "same") expect(out).toBe(s);
    else expect(out).not.toBe(s);
  });
});

describe("payloadBudget and oversizedResult", () => {
  it("leaves room for the headers and the rest of the event", () => {
    expect(payloadBudget(256 * KB, 500)).toBe(256 * KB - HEADER_ALLOWANCE - 500);
    expect(payloadBudget(undefined, 0)).toBe(DEFAULT_MAX_PAYLOAD - HEADER_ALLOWANCE);
  });

  it("fails the task for good, saying which limit it met", () => {
    const r = result({ steps: [step(0, { output: big(4 * KB) })] });
    const out = oversizedResult(r, 5_000_000, 262_144);
    expect(out).toMatchObject({
      status: "failed",
      steps: [],
      retryable: false,
      worker: "builder/a",
    });
    expect(out.error).toMatch(/5000000 bytes.*max_payload \(262144 bytes\)/);
    expect(jsonBytes(out)).toBeLessThan(1024);
  });
});

describe("a result with changes", () => {
  it("keeps the commit and totals, cutting only the file list, when it is too big", () => {
    const files = Array.from({ length: 5000 }, (_, i) => ({
      path: `src/generated/file-${i}.ts`,
      status: "added" as const,
      additions: 1,
      deletions: 0,
    }));
    const changes = {
      base: "a".repeat(40),
      commit: "b".repeat(40),
      files,
      additions: 5000,
      deletions: 0,
    };
    const fit = fitResult(result({ changes }), 64 * KB);
    expect(fit.ok).toBe(true);
    if (!fit.ok) return;
    expect(fit.result.changes).toMatchObject({
      base: changes.base,
      commit: changes.commit,
      additions: 5000,
    });
    expect(fit.result.changes!.files.length).toBeLessThan(5000);
    expect(fit.result.summary).toMatch(/of 5000 changed files listed/);
    expect(jsonBytes(fit.result)).toBeLessThanOrEqual(64 * KB);
  });
});
