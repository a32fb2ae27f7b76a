import { describe, expect, it } from "vitest";
import {
  describeShares,
  mergeSummaries,
  placeOf,
  summarizeProfile,
  type CpuProfile,
} from "../../src/bench/cpu-profile.ts";

describe("placeOf", () => {
  it("names a package, a file of ours, a Node internal or a V8 entry", () => {
    expect(placeOf("file:///w/node_modules/zod/v4/core/core.js", "parse")).toBe("zod");
    expect(placeOf("file:///w/node_modules/@nats-io/jetstream/lib/x.js", "f")).toBe(
      "@nats-io/jetstream",
    );
    expect(placeOf("file:///w/main/src/orchestrator/mission-machine.ts", "step")).toBe(
      "src/orchestrator/mission-machine.ts",
    );
    expect(placeOf("node:internal/child_process", "spawn")).toBe("node:internal/child_process");
    expect(placeOf("", "(garbage collector)")).toBe("(garbage collector)");
    expect(placeOf("", "writeBuffer")).toBe("(native)");
  });
});

describe("summarizeProfile", () => {
  // Three nodes; samples: idle 50 ms, step 30 ms, GC 20 ms (timeDeltas in µs).
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: "(idle)", url: "", lineNumber: -1 } },
      {
        id: 2,
        callFrame: { functionName: "step", url: "file:///r/src/orchestrator/m.ts", lineNumber: 9 },
      },
      { id: 3, callFrame: { functionName: "(garbage collector)", url: "", lineNumber: -1 } },
    ],
    startTime: 0,
    endTime: 100_000,
    samples: [1, 2, 2, 3, 1],
    timeDeltas: [25_000, 15_000, 15_000, 20_000, 25_000],
  };

  it("splits busy time by place and by function, idle left out of the shares", () => {
    const s = summarizeProfile(profile);
    expect(s.totalMs).toBe(100);
    expect(s.busyMs).toBe(50);
    expect(s.byPlace).toEqual([
      { name: "src/orchestrator/m.ts", ms: 30, share: 0.6 },
      { name: "(garbage collector)", ms: 20, share: 0.4 },
    ]);
    expect(s.byFunction[0]).toEqual({ name: "step src/orchestrator/m.ts:10", ms: 30, share: 0.6 });
    expect(describeShares(s.byPlace)).toBe("src/orchestrator/m.ts 60%, (garbage collector) 40%");
  });

  it("merges the summaries of several processes", () => {
    const s = summarizeProfile(profile);
    const m = mergeSummaries([s, s]);
    expect(m.busyMs).toBe(100);
    expect(m.byPlace[0]).toEqual({ name: "src/orchestrator/m.ts", ms: 60, share: 0.6 });
  });
});
