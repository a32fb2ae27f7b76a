/**
 * Benchmark 8, git workspaces, part two: the swarm end to end with and
 * without a mission repository, side by side in alternating rounds on the
 * same orchestrator and worker processes. Tasks that change nothing (`run:
 * []`, which needs no checkout at all, and `run: ["true"]`, which runs in a
 * checkout that is reset, tree-checked and found unchanged), and a mission
 * of waves of parallel tasks that each write a file of their own, so every
 * wave is one fast-forward and the rest rebased by the merge queue. The
 * `run: ["true"]` pair is then measured again on worker processes started
 * with SWARM_CHECKOUT_REUSE=0 (every checkout reset in full, as before
 * slots kept what their last attempt proved), each against its own
 * processes' plain rate.
 */
import type { PlanInput } from "../schema/plan.ts";
import { BENCH_AGENT, noopWidePlan, type NoopKind } from "./plans.ts";
import { ratePerSecond } from "./stats.ts";
import { startHarness, type Harness, type MissionRun } from "./swarm-harness.ts";

export interface WorkspaceThroughputOptions {
  replicas: number;
  concurrency: number;
  /** Tasks per no-op mission. */
  tasks: number;
  rounds: number;
  /** The wave mission: `waveTasks` tasks, `width` of them in parallel per wave. */
  waveTasks: number;
  width: number;
}

export type RepoMode = "plain" | "git";

export interface ModeRate {
  kind: NoopKind;
  mode: RepoMode;
  /** The workers' SWARM_CHECKOUT_REUSE (false: every checkout reset in full). */
  reuse: boolean;
  /** tasks/s of each round. */
  rounds: number[];
}

export interface WaveRun {
  mode: RepoMode;
  /** First task_assigned → mission_completed, ms. */
  makespanMs: number;
  fastForwards: number;
  rebased: number;
  conflicted: number;
  /** task_completed → its task_merged, ms (git only). */
  integrationMs: number[];
}

export interface WorkspaceThroughputFigures {
  rates: ModeRate[];
  waves: WaveRun[];
}

/** `n` tasks in waves of `width`; each depends on the whole wave before and writes its own file. */
export function waveWritePlan(n: number, width: number): PlanInput {
  const waves: PlanInput["waves"] = [];
  let previous: string[] = [];
  for (let w = 0; w * width < n; w++) {
    const ids = Array.from({ length: Math.min(width, n - w * width) }, (_, i) => {
      return `w${String(w + 1).padStart(2, "0")}t${i + 1}`;
    });
    waves.push({
      wave: w + 1,
      tasks: ids.map((id) => ({
        id,
        agent: BENCH_AGENT,
        title: `write ${id}`,
        instructions: "",
        depends_on: previous,
        acceptance: "",
        run: [`mkdir -p out && echo ${id} > out/${id}.txt`],
      })),
    });
    previous = ids;
  }
  return { strategy: `benchmark: ${n} tasks in waves of ${width}, each writing a file`, waves };
}

function rateOf(run: MissionRun, tasks: number): number {
  const completed = run.records.filter((r) => r.type === "task_completed").length;
  if (completed < tasks) throw new Error(`only ${completed} of ${tasks} tasks completed`);
  return ratePerSecond(tasks, run.finishedAt - run.firstAssignedAt);
}

function workspaceOf(mode: RepoMode): { workspace?: { seed: string | null } } {
  return mode === "git" ? { workspace: { seed: null } } : {};
}

async function waveRun(
  h: Harness,
  mode: RepoMode,
  opts: WorkspaceThroughputOptions,
  round: number,
) {
  const run = await h.runMission(
    `waves-${mode}-${round}`,
    waveWritePlan(opts.waveTasks, opts.width),
    600_000,
    workspaceOf(mode),
  );
  const completedAt = new Map<string, number>();
  const integrationMs: number[] = [];
  let conflicted = 0;
  for (const r of run.records) {
    // The merge follows the task's latest succeeded attempt.
    if (r.type === "task_completed" && r.taskId) completedAt.set(r.taskId, r.at);
    if (r.type === "task_conflicted") conflicted++;
    if (r.type === "task_merged" && r.taskId) {
      const done = completedAt.get(r.taskId);
      if (done !== undefined) integrationMs.push(r.at - done);
    }
  }
  const merged = run.records.filter((r) => r.type === "task_merged");
  return {
    mode,
    makespanMs: run.finishedAt - run.firstAssignedAt,
    fastForwards: merged.filter((r) => r.fastForward === true).length,
    rebased: merged.filter((r) => r.fastForward === false).length,
    conflicted,
    integrationMs,
  };
}

export async function workspaceThroughput(
  opts: WorkspaceThroughputOptions,
): Promise<WorkspaceThroughputFigures> {
  const h = await startHarness("workspace");
  const rates: ModeRate[] = [];
  const rate = (kind: NoopKind, mode: RepoMode, reuse: boolean): ModeRate => {
    let r = rates.find((x) => x.kind === kind && x.mode === mode && x.reuse === reuse);
    if (!r) rates.push((r = { kind, mode, reuse, rounds: [] }));
    return r;
  };
  const waves: WaveRun[] = [];
  try {
    for (const reuse of [true, false]) {
      const workers = await h.startWorkers({
        replicas: opts.replicas,
        concurrency: opts.concurrency,
        ...(reuse ? {} : { env: { SWARM_CHECKOUT_REUSE: "0" } }),
      });
      try {
        const warm = opts.replicas * opts.concurrency;
        for (const mode of ["plain", "git"] as const)
          await h.runMission(
            `warmup-${mode}-${reuse ? "reuse" : "reset"}`,
            noopWidePlan(warm, "shell"),
            120_000,
            workspaceOf(mode),
          );
        // Without reuse only the checkout-bound kind differs (`run: []` needs no checkout).
        const kinds = reuse ? (["empty", "shell"] as const) : (["shell"] as const);
        for (let round = 1; round <= opts.rounds; round++) {
          // The order flips each round, so a drift of the machine weighs on both.
          const order: RepoMode[] = round % 2 ? ["plain", "git"] : ["git", "plain"];
          for (const kind of kinds) {
            for (const mode of order) {
              const run = await h.runMission(
                `${kind}-${mode}-${reuse ? "reuse" : "reset"}-${round}`,
                noopWidePlan(opts.tasks, kind),
                600_000,
                workspaceOf(mode),
              );
              rate(kind, mode, reuse).rounds.push(rateOf(run, opts.tasks));
            }
          }
          if (reuse) for (const mode of order) waves.push(await waveRun(h, mode, opts, round));
        }
      } finally {
        await workers.stop();
      }
    }
  } finally {
    await h.close();
  }
  return { rates, waves };
}
