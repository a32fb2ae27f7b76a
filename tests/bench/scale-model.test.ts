import { describe, expect, it } from "vitest";
import type { ProbeRecord } from "../../src/bench/event-probe.ts";
import type { Section } from "../../src/bench/results.ts";
import {
  dispatchDelays,
  fairness,
  limitsPassed,
  perReplicaCost,
  replicasServed,
  scaleModel,
  splitOrchestratorCost,
  tasksPerWorker,
} from "../../src/bench/scale-model.ts";
import { orchestratorsFor, scaleInputs, scaleModelText } from "../../src/bench/scale-model-text.ts";

const rec = (
  at: number,
  type: string,
  missionId: string,
  taskId: string,
  worker: string | null = null,
): ProbeRecord => ({
  at,
  type,
  subject: "squad.coordination",
  missionId,
  taskId,
  attempt: 1,
  agent: null,
  worker,
  status: null,
  reason: null,
  fastForward: null,
});

describe("fairness", () => {
  it("counts replicas that ran nothing as zeros", () => {
    const f = fairness(
      new Map([
        ["a", 3],
        ["b", 1],
      ]),
      4,
    );
    expect(f).toMatchObject({ replicas: 4, min: 0, max: 3, mean: 1 });
    // Population standard deviation of [3, 1, 0, 0] is sqrt(1.5).
    expect(f.cov).toBeCloseTo(Math.sqrt(1.5), 10);
  });

  it("is 0 for an even spread and refuses more workers than replicas", () => {
    expect(
      fairness(
        new Map([
          ["a", 5],
          ["b", 5],
        ]),
        2,
      ).cov,
    ).toBe(0);
    expect(() =>
      fairness(
        new Map([
          ["a", 1],
          ["b", 1],
        ]),
        1,
      ),
    ).toThrow(RangeError);
  });
});

describe("tasksPerWorker and dispatchDelays", () => {
  const records = [
    rec(0, "task_assigned", "m1", "t1"),
    rec(1, "task_assigned", "m2", "t1"),
    rec(4, "task_started", "m1", "t1", "builder/a"),
    rec(9, "task_started", "m2", "t1", "builder/b"),
    // A redelivery starts the same task again: neither counted nor timed twice.
    rec(12, "task_started", "m1", "t1", "builder/b"),
    rec(13, "task_assigned", "m1", "t2"),
    rec(20, "task_started", "m1", "t2", "builder/a"),
  ];

  it("keys tasks by mission and task, first start only", () => {
    expect(tasksPerWorker(records)).toEqual(
      new Map([
        ["builder/a", 2],
        ["builder/b", 1],
      ]),
    );
    expect(dispatchDelays(records)).toEqual([4, 8, 7]);
  });
});

describe("splitOrchestratorCost", () => {
  it("recovers N × shared + divisible from exact points", () => {
    const points = [1, 2, 4].map((n) => ({ orchestrators: n, msPerTask: n * 0.5 + 2 }));
    const s = splitOrchestratorCost(points);
    expect(s.sharedMs).toBeCloseTo(0.5, 10);
    expect(s.divisibleMs).toBeCloseTo(2, 10);
  });

  it("never gives a negative part", () => {
    const falling = splitOrchestratorCost([
      { orchestrators: 1, msPerTask: 3 },
      { orchestrators: 2, msPerTask: 2 },
    ]);
    expect(falling).toEqual({ sharedMs: 0, divisibleMs: 2.5 });
    const steep = splitOrchestratorCost([
      { orchestrators: 1, msPerTask: 1 },
      { orchestrators: 2, msPerTask: 4 },
    ]);
    expect(steep.divisibleMs).toBe(0);
    expect(steep.sharedMs).toBeCloseTo(5 / 3, 10);
  });
});

describe("scaleModel", () => {
  const model = scaleModel({
    baselineTasksPerSecond: 300,
    orchestratorMs: [
      { orchestrators: 1, msPerTask: 2.5 },
      { orchestrators: 2, msPerTask: 3 },
      { orchestrators: 4, msPerTask: 4 },
    ],
    workerMs: 2,
    natsMs: 1,
    clusterNodeMs: [1, 1.25, 0.5],
    natsCores: 4,
    modelReplicaTasksPerSecond: 50,
    baselineReplicas: 4,
    fanout: null,
  });

  it("turns CPU per task into tasks/s per core", () => {
    // shared 0.5 ms, divisible 2 ms.
    expect(model.orchestrator).toBeCloseTo(400, 6);
    expect(model.orchestrators(4)).toBeCloseTo(1000, 6);
    expect(model.orchestratorCeiling).toBeCloseTo(2000, 6);
    expect(model.nats).toBe(4000);
    expect(model.cluster).toBe(3200);
    // No fan-out measured: a replica costs nothing extra, so 4000 ÷ each replica's rate.
    expect(model.replicasPerConsumer).toEqual({ noop: 8, model: 80 });
  });

  it("orders the limits by the load that meets them", () => {
    expect(model.limits.map((l) => Math.round(l.tasksPerSecond!))).toEqual([400, 2000, 3200, 4000]);
    expect(limitsPassed(model, 3000).map((l) => Math.round(l.tasksPerSecond!))).toEqual([
      400, 2000,
    ]);
    expect(orchestratorsFor(model, 300)).toBe(1);
    expect(orchestratorsFor(model, 990)).toBe(4);
    expect(orchestratorsFor(model, 2000)).toBeNull();
  });
});

describe("replicas and the coordination fan-in", () => {
  it("takes the per-replica cost as the slope between the baseline and the fan-out run", () => {
    const c = perReplicaCost({
      baselineReplicas: 4,
      natsMs: 1,
      workerMs: 2,
      fanout: { replicas: 64, natsMs: 1.6, workerMs: 1.4 },
    });
    expect(c.natsMs).toBeCloseTo(0.01, 10);
    expect(c.natsBaseMs).toBeCloseTo(0.96, 10);
    // A cheaper fan-out run (another process layout) gives no negative cost.
    expect(c.workerMs).toBe(0);
  });

  it("solves R × rate × (base + perReplica × R) = 1000 × cores for R", () => {
    const r = replicasServed(1, 0.001, 100, 1);
    expect(r * 100 * (1 + 0.001 * r)).toBeCloseTo(1000, 6);
    expect(replicasServed(1, 0, 100, 4)).toBe(40);
  });
});

describe("scaleModelText", () => {
  const fig = (key: string, value: number) => ({ key, name: key, value, unit: "ms" as const });
  const section: Section = {
    id: "scale",
    title: "10. Past one orchestrator",
    durationMs: 1,
    notes: [],
    figures: [
      { ...fig("scale.orchestrators.1.throughput", 300), unit: "tasks/s" },
      fig("scale.orchestrators.1.cpu.orchestrators", 2.5),
      fig("scale.orchestrators.2.cpu.orchestrators", 3),
      fig("scale.orchestrators.1.cpu.workers", 2),
      fig("scale.orchestrators.1.cpu.nats", 1),
    ],
  };

  it("is written only when the scale step ran, from its figures", () => {
    expect(scaleModelText([{ ...section, figures: [] }])).toEqual([]);
    const inputs = scaleInputs([section]);
    expect(inputs).toMatchObject({ baselineTasksPerSecond: 300, clusterNodeMs: null });
    const text = scaleModelText([section]).join("\n");
    expect(text).toContain("**300 tasks/s**");
    expect(text).toContain("| 1000× | 300,000 |");
  });
});
