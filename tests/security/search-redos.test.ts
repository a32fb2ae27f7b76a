/**
 * A model's catastrophic pattern against search_files, through the real
 * tool: `(a|a?)+b` on lines of many `a`s took a backtracking RegExp 113 s
 * in one synchronous call, with the worker's heartbeats and lease lost
 * meanwhile. With RE2 the call ends, and the event loop keeps turning while
 * it runs: the loop's worst delay, measured by perf_hooks, stays far below a
 * second (a bound on blocking, not a speed test: the old code blocked for
 * minutes).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentTools } from "../../src/tools/agent-tools.ts";

let ws: string;

beforeAll(async () => {
  ws = await mkdtemp(path.join(os.tmpdir(), "squad-redos-"));
  // Just under search_files' 1 MiB per-file cap: 500 lines of 2,000 `a`s.
  await writeFile(path.join(ws, "as.txt"), `${"a".repeat(2000)}\n`.repeat(500));
  await writeFile(path.join(ws, "hit.txt"), "aaab\n");
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
});

describe("search_files with a catastrophic-backtracking pattern", () => {
  it.each(["(a|a?)+b", "(a+)+$", "^(a|aa)+c", "(.*a){12}z"])(
    "%s ends and never blocks the event loop",
    async (pattern) => {
      const [search] = createAgentTools({
        workspace: ws,
        allowed: ["search_files"],
        shellTimeoutMs: 10_000,
        onStep: () => {},
      });
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      try {
        const text = String(await search!.invoke({ pattern }));
        expect(text).not.toMatch(/^ERROR/);
        if (pattern === "(a|a?)+b") expect(text).toBe("hit.txt:1: aaab");
      } finally {
        delay.disable();
      }
      // Nanoseconds; a blocked loop shows the whole block here.
      expect(delay.max / 1e6).toBeLessThan(1_000);
    },
  );
});
