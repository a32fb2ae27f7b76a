/**
 * Benchmark 5, makespan: one DAG with uneven task lengths (model-bound
 * tasks on the fake server), its makespan ÷ the critical path, run three
 * ways side by side: our dependency-driven dispatch, our orchestrator with a
 * strict wave barrier (the same plan without depends_on: by the contract
 * each task then waits for the whole previous wave, as in the seed design),
 * and a LangGraph.js StateGraph fanning out each wave in process.
 */
import { startFakeModelServer } from "./fake-model-server.ts";
import { fakeModelEnv } from "./model-scaling.ts";
import {
  criticalPathMs,
  dagPlan,
  makespanDag,
  modelWidePlan,
  waveBarrierMs,
  widestWave,
  type DagTask,
} from "./plans.ts";
import { atMost, type Section } from "./results.ts";
import { startHarness } from "./swarm-harness.ts";
import { median } from "./stats.ts";

export interface MakespanOptions {
  /** One length unit of the DAG (tasks are 1-6 units). */
  unitMs: number;
  callsPerTask: number;
  /** Runs of each variant; the figure is the median. */
  repeats: number;
  /** An untimed LangGraph run first (JIT, connections), as our swarm gets a warm-up mission. */
  langGraphWarmup: boolean;
}

export interface MakespanFigures {
  dag: DagTask[];
  criticalPathMs: number;
  waveBarrierBoundMs: number;
  dependencyDriven: number[];
  waveBarrier: number[];
  langGraph: number[];
  /** submit → first task_assigned of our runs (planning and intake; not in the makespan). */
  intakeMs: number[];
}

export async function makespan(opts: MakespanOptions): Promise<MakespanFigures> {
  const dag = makespanDag(opts.unitMs);
  const model = await startFakeModelServer({ callMs: opts.unitMs });
  const h = await startHarness("makespan");
  const out: MakespanFigures = {
    dag,
    criticalPathMs: criticalPathMs(dag),
    waveBarrierBoundMs: waveBarrierMs(dag),
    dependencyDriven: [],
    waveBarrier: [],
    langGraph: [],
    intakeMs: [],
  };
  try {
    // Slots never bind: twice the widest wave.
    const workers = await h.startWorkers({
      replicas: 1,
      concurrency: widestWave(dag) * 2,
      env: fakeModelEnv(model.url),
    });
    try {
      await h.runMission("makespan-warmup", modelWidePlan(widestWave(dag), "w"), 120_000);
      for (let i = 0; i < opts.repeats; i++) {
        for (const barrier of [false, true]) {
          const run = await h.runMission(
            `makespan-${barrier ? "barrier" : "dag"}-${i + 1}`,
            dagPlan(dag, { barrier, callsPerTask: opts.callsPerTask }),
            120_000,
          );
          (barrier ? out.waveBarrier : out.dependencyDriven).push(
            run.finishedAt - run.firstAssignedAt,
          );
          out.intakeMs.push(run.firstAssignedAt - run.submittedAt);
        }
      }
    } finally {
      await workers.stop();
    }
    // In this process, with the swarm idle: LangGraph gets the machine to itself.
    const { runLangGraphFanOut } = await import("./langgraph-fanout.ts");
    if (opts.langGraphWarmup) {
      await runLangGraphFanOut(dag, { modelUrl: model.url, callsPerTask: opts.callsPerTask });
    }
    for (let i = 0; i < opts.repeats; i++) {
      const r = await runLangGraphFanOut(dag, {
        modelUrl: model.url,
        callsPerTask: opts.callsPerTask,
      });
      if (r.done.length !== dag.length) {
        throw new Error(`LangGraph ran ${r.done.length} of ${dag.length} tasks`);
      }
      out.langGraph.push(r.makespanMs);
    }
    return out;
  } finally {
    await h.close();
    await model.close();
  }
}

export function makespanSection(
  m: MakespanFigures,
  opts: MakespanOptions,
  durationMs: number,
): Section {
  const cp = m.criticalPathMs;
  const fig = (key: string, name: string, runs: number[], target: boolean) => {
    const v = median(runs) / 1000;
    const r = median(runs) / cp;
    return {
      key,
      name,
      value: v,
      unit: "s" as const,
      reference: { label: "critical path", value: cp / 1000, unit: "s" as const },
      ratio: r,
      ...(target ? { target: atMost(Number(r.toFixed(3)), 1.05, "× critical path") } : {}),
    };
  };
  const lengths = m.dag
    .map(
      (t) =>
        `${t.id} ${t.lengthMs} ms${t.dependsOn.length ? ` after ${t.dependsOn.join("+")}` : ""}`,
    )
    .join(", ");
  return {
    id: "makespan",
    title: "5. Makespan of a DAG with uneven tasks",
    durationMs,
    figures: [
      fig("makespan.dag", "our dependency-driven dispatch", m.dependencyDriven, true),
      fig(
        "makespan.barrier",
        "our orchestrator, strict wave barrier (seed design)",
        m.waveBarrier,
        false,
      ),
      fig(
        "makespan.langgraph",
        "LangGraph.js StateGraph, Send fan-out per wave",
        m.langGraph,
        false,
      ),
      {
        key: "makespan.barrier.bound",
        name: "lower bound of any wave-barrier schedule (sum of each wave's longest task)",
        value: m.waveBarrierBoundMs / 1000,
        unit: "s",
        reference: { label: "critical path", value: cp / 1000, unit: "s" },
        ratio: m.waveBarrierBoundMs / cp,
      },
    ],
    notes: [
      `The DAG (${m.dag.length} tasks in 3 waves; length = ${opts.callsPerTask} model calls of ` +
        `length/${opts.callsPerTask} on the fake server): ${lengths}. Critical path ` +
        `${(cp / 1000).toFixed(2)} s. Our runs: one replica with more slots than the widest wave, ` +
        `timed from the first task_assigned to mission_completed (intake and planning, ` +
        `${(median(m.intakeMs) / 1000).toFixed(2)} s median, excluded); ` +
        `median of ${opts.repeats} run(s) each.`,
      `LangGraph: the same DAG and the same two calls per task (ChatOllama against the same fake ` +
        `server) in one process; a wave's Send fan-out is one superstep, which ends when its ` +
        `slowest branch does, so it is a wave barrier by construction. Timed around graph.invoke()` +
        `${opts.langGraphWarmup ? ", after one warm-up run" : ""}.`,
    ],
  };
}
