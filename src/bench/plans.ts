/**
 * The missions the benchmarks submit, as explicit plans in ordinary briefs
 * (so the real orchestrator parses, validates and runs them like any other),
 * and the DAG arithmetic the makespan benchmark is judged by. Pure.
 */
import type { PlanInput } from "../schema/plan.ts";
import { callDelayMarker } from "./fake-model-server.ts";

/** The roster agent every benchmark task goes to (in the default roster). */
export const BENCH_AGENT = "builder";

type PlanTaskInput = PlanInput["waves"][number]["tasks"][number];

function taskId(prefix: string, i: number, n: number): string {
  return `${prefix}${String(i + 1).padStart(String(n).length, "0")}`;
}

/**
 * What a no-op task does: `empty` runs nothing (`run: []`: dispatch, claim and
 * events only, the swarm itself); `shell` runs one shell command
 * (`run: ["true"]`: a process per task).
 */
export type NoopKind = "empty" | "shell";

/** The `run` list of a no-op task of this kind. */
export function noopRun(kind: NoopKind): string[] {
  return kind === "empty" ? [] : ["true"];
}

function noopTask(id: string, dependsOn: string[], kind: NoopKind): PlanTaskInput {
  return {
    id,
    agent: BENCH_AGENT,
    title: `no-op ${id}`,
    instructions: "",
    depends_on: dependsOn,
    acceptance: "",
    run: noopRun(kind),
  };
}

/** n no-op tasks, each depending on the one before: one task in flight at a time. */
export function noopChainPlan(n: number, kind: NoopKind = "shell"): PlanInput {
  const ids = Array.from({ length: n }, (_, i) => taskId("c", i, n));
  return {
    strategy: `benchmark: a chain of ${n} no-op tasks`,
    waves: [{ wave: 1, tasks: ids.map((id, i) => noopTask(id, i ? [ids[i - 1]!] : [], kind)) }],
  };
}

/** n independent no-op tasks in one wave: all ready at once. */
export function noopWidePlan(n: number, kind: NoopKind = "shell"): PlanInput {
  return {
    strategy: `benchmark: ${n} independent no-op tasks`,
    waves: [
      {
        wave: 1,
        tasks: Array.from({ length: n }, (_, i) => noopTask(taskId("n", i, n), [], kind)),
      },
    ],
  };
}

/** n independent model-driven tasks (two model calls each on the fake server). */
export function modelWidePlan(n: number, prefix = "m"): PlanInput {
  return {
    strategy: `benchmark: ${n} independent model-driven tasks`,
    waves: [
      {
        wave: 1,
        tasks: Array.from({ length: n }, (_, i) => {
          const id = taskId(prefix, i, n);
          return {
            id,
            agent: BENCH_AGENT,
            title: `model-bound ${id}`,
            instructions: "List the files of the workspace, then say you are done.",
            depends_on: [],
            acceptance: "",
          };
        }),
      },
    ],
  };
}

// ------------------------------------------------------------------ DAGs

/** One task of a benchmark DAG: its wave, what it waits for, how long its work takes. */
export interface DagTask {
  id: string;
  wave: number;
  dependsOn: string[];
  /** Time of the work alone (model calls), without any dispatch overhead. */
  lengthMs: number;
}

/**
 * The makespan DAG: four branches over three waves whose long tasks sit in
 * different waves, so a wave barrier waits for the slowest task of every wave
 * while dependency-driven dispatch lets each branch run on. Lengths are
 * multiples of `unitMs` (2 model calls of unitMs/2 ... 3×unitMs each).
 */
export function makespanDag(unitMs: number): DagTask[] {
  const t = (id: string, wave: number, dependsOn: string[], units: number): DagTask => ({
    id,
    wave,
    dependsOn,
    lengthMs: units * unitMs,
  });
  return [
    t("a1", 1, [], 6),
    t("b1", 1, [], 1),
    t("c1", 1, [], 3),
    t("d1", 1, [], 1),
    t("a2", 2, ["a1"], 1),
    t("b2", 2, ["b1"], 6),
    t("c2", 2, ["c1"], 2),
    t("d2", 2, ["d1"], 3),
    t("a3", 3, ["a2"], 3),
    t("b3", 3, ["b2"], 1),
    t("c3", 3, ["c2", "d2"], 4),
  ];
}

function byId(tasks: readonly DagTask[]): Map<string, DagTask> {
  const map = new Map<string, DagTask>();
  for (const t of tasks) {
    if (map.has(t.id)) throw new Error(`duplicate task ${t.id}`);
    map.set(t.id, t);
  }
  return map;
}

/** Length of the longest dependency path: no schedule can finish sooner (unlimited slots). */
export function criticalPathMs(tasks: readonly DagTask[]): number {
  const map = byId(tasks);
  const finish = new Map<string, number>();
  const visiting = new Set<string>();
  const end = (id: string): number => {
    const known = finish.get(id);
    if (known !== undefined) return known;
    const t = map.get(id);
    if (!t) throw new Error(`unknown dependency ${id}`);
    if (visiting.has(id)) throw new Error(`dependency cycle through ${id}`);
    visiting.add(id);
    const start = Math.max(0, ...t.dependsOn.map(end));
    visiting.delete(id);
    finish.set(id, start + t.lengthMs);
    return start + t.lengthMs;
  };
  return Math.max(0, ...tasks.map((t) => end(t.id)));
}

/** Makespan of a strict wave barrier with unlimited slots: the slowest task of each wave, summed. */
export function waveBarrierMs(tasks: readonly DagTask[]): number {
  const slowest = new Map<number, number>();
  for (const t of tasks) slowest.set(t.wave, Math.max(slowest.get(t.wave) ?? 0, t.lengthMs));
  return [...slowest.values()].reduce((a, b) => a + b, 0);
}

/** Most tasks of one wave: the slots a schedule needs so that slots never bind. */
export function widestWave(tasks: readonly DagTask[]): number {
  const width = new Map<number, number>();
  for (const t of tasks) width.set(t.wave, (width.get(t.wave) ?? 0) + 1);
  return Math.max(0, ...width.values());
}

/**
 * The DAG as a plan of model-driven tasks: each makes `callsPerTask` calls of
 * lengthMs/callsPerTask (a marker in the instructions tells the fake server).
 * `barrier`: dependencies are left out, so by the contract every task waits
 * for every task of the previous wave (the seed design's wave barrier).
 */
export function dagPlan(
  tasks: readonly DagTask[],
  opts: { barrier: boolean; callsPerTask: number },
): PlanInput {
  const waves = [...new Set(tasks.map((t) => t.wave))].sort((a, b) => a - b);
  return {
    strategy: opts.barrier
      ? "benchmark DAG, strict wave barrier"
      : "benchmark DAG, dependency-driven",
    waves: waves.map((wave, i) => ({
      wave: i + 1,
      tasks: tasks
        .filter((t) => t.wave === wave)
        .map((t) => ({
          id: t.id,
          agent: BENCH_AGENT,
          title: `DAG task ${t.id}`,
          instructions:
            `List the files of the workspace, then say you are done. ` +
            `(${callDelayMarker(t.lengthMs / opts.callsPerTask)})`,
          ...(opts.barrier ? {} : { depends_on: t.dependsOn }),
          acceptance: "",
        })),
    })),
  };
}

/** A brief with an explicit plan: YAML front matter whose plan is written as JSON (YAML's subset). */
export function briefText(title: string, plan: PlanInput): string {
  return [
    "---",
    `title: ${JSON.stringify(title)}`,
    `agents: [${BENCH_AGENT}]`,
    `plan: ${JSON.stringify(plan)}`,
    "---",
    `# ${title}`,
    "",
    "Generated by `swarm bench`: an explicit plan, so no planner model is involved.",
    "",
  ].join("\n");
}
