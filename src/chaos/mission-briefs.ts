/**
 * The missions a chaos run submits: briefs with explicit plans whose every
 * execution leaves one line in `<witness>/runs/<task>.log`. The line is the
 * side effect that is counted: a task whose log has two lines ran twice, one
 * without a log never ran. The witness is a directory outside every task's
 * checkout (each attempt works in its own, reset between attempts, so a line
 * there would not survive): the runner makes it and hands it to the swarm as
 * SWARM_TASK_SHARED_DIR, the one directory every sandboxed task may write.
 * Plans name it by WITNESS, replaced with the real path when submitted.
 */
import { stringify } from "yaml";
import type { PlanInput } from "../schema/plan.ts";

/** The folder of the run logs, in the witness directory. */
export const RUNS_DIR = "runs";

/** Stands for the witness directory's path in plans; see withWitness. */
export const WITNESS = "@SQUAD_CHAOS_WITNESS@";

/** `text` (a brief, a command) with WITNESS replaced by the witness directory. */
export function withWitness(text: string, witnessDir: string): string {
  return text.replaceAll(WITNESS, witnessDir);
}

/** The run log of `taskId`. */
export function runLog(taskId: string): string {
  return `${WITNESS}/${RUNS_DIR}/${taskId}.log`;
}

/** The side effect of one execution of `taskId`: append a line to its run log. */
export function sideEffectCommand(taskId: string): string {
  return `mkdir -p ${WITNESS}/${RUNS_DIR} && echo "ran $(date +%s%N)" >> ${runLog(taskId)}`;
}

export interface RunPlanOptions {
  tasks: number;
  /** Agents the tasks are spread over, round robin. */
  agents: readonly string[];
  /** Waves; each task depends on the task in the same position of the wave before. */
  waves: number;
  /** Seconds each task sleeps after its side effect (so a kill lands mid-task). */
  stepS: number;
  timeoutS?: number;
  maxAttempts?: number;
}

/** The file in the witness directory that lets the gate task finish. */
export const GATE_FILE = "chaos-gate-open";
export const GATE_TASK = "gate";

/**
 * A task that holds the mission open until the runner writes GATE_FILE (after
 * its checks, or once enough faults landed), so that however fast the machine,
 * the faults land while the mission runs. It leaves its line like any task.
 */
export function gateTask(agent: string): PlanInput["waves"][number]["tasks"][number] {
  return {
    id: GATE_TASK,
    agent,
    title: "hold the mission open until the chaos runner says",
    instructions: `Wait for ${GATE_FILE}.`,
    depends_on: [],
    run: [sideEffectCommand(GATE_TASK), `until [ -f ${WITNESS}/${GATE_FILE} ]; do sleep 0.3; done`],
    timeout_s: 900,
  };
}

/** `t001`, `t002`...: ids sort as they were made. */
export function taskId(n: number): string {
  return `t${String(n).padStart(3, "0")}`;
}

/**
 * A plan of shell-step tasks in chains: `tasks` split over `waves`, each task
 * depending on one of the wave before (not all of it), so one slow task
 * holds back its chain only.
 */
export function runStepPlan(o: RunPlanOptions): PlanInput {
  const width = Math.ceil(o.tasks / o.waves);
  const waves: PlanInput["waves"] = [];
  for (let w = 0, n = 1; n <= o.tasks; w++) {
    const tasks = [];
    for (let i = 0; i < width && n <= o.tasks; i++, n++) {
      const id = taskId(n);
      tasks.push({
        id,
        agent: o.agents[(n - 1) % o.agents.length]!,
        title: `chaos task ${id}`,
        instructions: `Append one line to ${runLog(id)}.`,
        depends_on: w === 0 ? [] : [taskId(n - width)],
        acceptance: `${runLog(id)} exists`,
        // The side effect (counted), then a file of its own in its checkout: a commit to merge.
        run: [
          sideEffectCommand(id),
          `mkdir -p out && echo ${id} > out/${id}.txt`,
          `sleep ${o.stepS}`,
        ],
        verify: [`test -s ${runLog(id)}`],
        ...(o.timeoutS ? { timeout_s: o.timeoutS } : {}),
        ...(o.maxAttempts ? { max_attempts: o.maxAttempts } : {}),
      });
    }
    waves.push({ wave: w + 1, rationale: `chaos wave ${w + 1}`, tasks });
  }
  return { strategy: "chains of shell steps, each leaving one line per execution", waves };
}

/**
 * A plan of model-driven tasks (no `run` steps): the agent must call
 * `run_shell` itself; the fake model tells it to run `sideEffectCommand`.
 * `verify` checks the side effect, so a task the model never did fails.
 */
export function modelPlan(o: {
  tasks: number;
  agents: readonly string[];
  timeoutS: number;
  maxAttempts: number;
}): PlanInput {
  const tasks = Array.from({ length: o.tasks }, (_, i) => {
    const id = taskId(i + 1);
    return {
      id,
      agent: o.agents[i % o.agents.length]!,
      title: `model task ${id}`,
      instructions: `Run this command with run_shell: ${sideEffectCommand(id)}`,
      depends_on: [],
      acceptance: `${runLog(id)} exists`,
      verify: [`test -s ${runLog(id)}`],
      timeout_s: o.timeoutS,
      max_attempts: o.maxAttempts,
    };
  });
  return {
    strategy: "independent model-driven tasks",
    waves: [{ wave: 1, rationale: "all at once", tasks }],
  };
}

/** A brief: YAML front matter with the plan, and a short body. */
export function briefFor(title: string, plan: PlanInput, agents: readonly string[]): string {
  const front = stringify({ title, agents: [...new Set(agents)], plan }, { lineWidth: 0 });
  return `---\n${front}---\n\n# ${title}\n\nA chaos mission: see docs/reliability.md.\n`;
}
