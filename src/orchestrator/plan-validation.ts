/**
 * Plan validation and normalization (pure).
 *
 * One function decides whether a plan can run, whatever wrote it: a brief's
 * explicit plan, the planner model, or a replan. Problems are sentences a
 * person (or the planner model, on a repair round) can act on; each names the
 * task, the wave or the cycle it is about.
 */
import type { z } from "zod";
import { Plan, type PlanTask, type PlanWave } from "../schema/plan.ts";

export const DEFAULT_TASK_TIMEOUT_S = 600;
export const DEFAULT_MAX_ATTEMPTS = 3;

/** A plan task with the contract's defaults filled in. */
export type NormalizedTask = Omit<PlanTask, "depends_on" | "timeout_s" | "max_attempts"> & {
  /** Always explicit: the contract default (every task of the previous wave) is applied. */
  depends_on: string[];
  timeout_s: number;
  max_attempts: number;
};
export type NormalizedWave = Omit<PlanWave, "tasks"> & { tasks: NormalizedTask[] };
export type NormalizedPlan = Omit<Plan, "waves"> & { waves: NormalizedWave[] };

export interface PlanValidationOptions {
  /** Agents the plan may use. Omitted: agent names are not checked (e.g. inside the machine). */
  agents?: readonly string[] | null;
  /**
   * Ids of tasks that already succeeded (a replan). A task may depend on them
   * even when the revised plan does not list them; a revised task with such
   * an id is kept as done, so its own dependencies are not checked.
   */
  completed?: readonly string[];
}

export type PlanValidation = { ok: true; plan: NormalizedPlan } | { ok: false; problems: string[] };

/** Validate a plan (any JSON value) and fill in its defaults. */
export function validatePlan(plan: unknown, opts: PlanValidationOptions = {}): PlanValidation {
  const parsed = Plan.safeParse(plan);
  if (!parsed.success) return { ok: false, problems: describeSchemaIssues(plan, parsed.error) };
  const problems: string[] = [];
  const completed = new Set(opts.completed ?? []);
  const waves = parsed.data.waves;

  waves.forEach((w, i) => {
    if (w.wave !== i + 1) {
      problems.push(
        `waves must be numbered 1..n in order: the wave at position ${i + 1} is numbered ${w.wave}`,
      );
    }
  });

  // Ids are unique across waves: they name KV keys, message ids and report rows.
  const waveOf = new Map<string, number>();
  for (const [i, w] of waves.entries()) {
    for (const t of w.tasks) {
      const seen = waveOf.get(t.id);
      if (seen !== undefined) {
        problems.push(
          seen === i + 1
            ? `task ${t.id}: duplicate id (used twice in wave ${i + 1})`
            : `task ${t.id}: duplicate id (used in wave ${seen} and wave ${i + 1})`,
        );
      } else {
        waveOf.set(t.id, i + 1);
      }
    }
  }

  if (opts.agents) {
    const allowed = new Set(opts.agents);
    const list = opts.agents.length ? opts.agents.join(", ") : "none";
    for (const w of waves) {
      for (const t of w.tasks) {
        if (!allowed.has(t.agent)) {
          problems.push(`task ${t.id}: unknown agent "${t.agent}" (allowed agents: ${list})`);
        }
      }
    }
  }

  // Normalize first (the default dependencies matter for the checks below).
  const normalized: NormalizedPlan = {
    ...parsed.data,
    waves: waves.map((w, i) => {
      const previous = i > 0 ? waves[i - 1]!.tasks.map((t) => t.id) : [];
      return {
        ...w,
        // Position, not the declared number, is the wave: the numbering problem is reported above.
        wave: i + 1,
        tasks: w.tasks.map((t) => ({
          ...t,
          // The default never names the task itself (only a duplicate id could): that is
          // reported as the duplicate it is, not as a self-dependency.
          depends_on: [...new Set(t.depends_on ?? previous.filter((id) => id !== t.id))],
          timeout_s: t.timeout_s ?? DEFAULT_TASK_TIMEOUT_S,
          max_attempts: t.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
        })),
      };
    }),
  };

  for (const w of normalized.waves) {
    for (const t of w.tasks) {
      // `run: []` is a deliberate no-op (milestone) or checks-only task: only an absent `run` needs instructions.
      if (!t.instructions.trim() && t.run === undefined) {
        problems.push(
          `task ${t.id}: has neither instructions nor run steps, so there is nothing to do`,
        );
      }
      if (completed.has(t.id)) continue; // kept as done: its dependencies no longer matter
      for (const dep of t.depends_on) {
        if (dep === t.id) {
          problems.push(`task ${t.id}: depends on itself`);
          continue;
        }
        if (completed.has(dep)) continue;
        const depWave = waveOf.get(dep);
        if (depWave === undefined) {
          problems.push(`task ${t.id}: depends on unknown task ${dep}`);
        } else if (depWave > w.wave) {
          problems.push(
            `task ${t.id} (wave ${w.wave}): depends on ${dep} of a later wave (wave ${depWave})`,
          );
        }
      }
    }
  }

  for (const cycle of findCycles(normalized, completed)) {
    problems.push(`dependency cycle: ${cycle.join(" → ")} (each task depends on the next)`);
  }

  return problems.length ? { ok: false, problems } : { ok: true, plan: normalized };
}

/** Every task of a plan, in plan order. */
export function planTasks(plan: NormalizedPlan): Array<NormalizedTask & { wave: number }> {
  return plan.waves.flatMap((w) => w.tasks.map((t) => ({ ...t, wave: w.wave })));
}

/**
 * Cycles found by depth-first search, each reported once as "t1 → t2 → t1"
 * (t1 depends on t2, which depends on t1), starting from its smallest id.
 * Edges into and out of completed tasks are ignored.
 */
function findCycles(plan: NormalizedPlan, completed: ReadonlySet<string>): string[][] {
  const deps = new Map<string, string[]>();
  for (const t of planTasks(plan)) {
    if (!deps.has(t.id) && !completed.has(t.id)) {
      deps.set(
        t.id,
        t.depends_on.filter((d) => d !== t.id && !completed.has(d)),
      );
    }
  }
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();

  const visit = (id: string): void => {
    state.set(id, "visiting");
    stack.push(id);
    for (const dep of deps.get(id) ?? []) {
      if (!deps.has(dep)) continue; // unknown: reported elsewhere
      const s = state.get(dep);
      if (s === "visiting") {
        // The stack from dep to id: each member depends on the next, and id depends on dep.
        const members = stack.slice(stack.indexOf(dep));
        const key = [...members].sort().join(",");
        if (!seen.has(key)) {
          seen.add(key);
          const start = members.indexOf([...members].sort()[0]!);
          const rotated = [...members.slice(start), ...members.slice(0, start)];
          cycles.push([...rotated, rotated[0]!]);
        }
      } else if (s === undefined) {
        visit(dep);
      }
    }
    stack.pop();
    state.set(id, "done");
  };
  for (const id of deps.keys()) if (!state.has(id)) visit(id);
  return cycles;
}

/** zod issues as sentences that name the task (or wave) when the path points into one. */
function describeSchemaIssues(plan: unknown, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path;
    const where: string[] = [];
    if (path[0] === "waves" && typeof path[1] === "number") {
      const wave = path[1];
      if (path[2] === "tasks" && typeof path[3] === "number") {
        const id = taskIdAt(plan, wave, path[3]);
        where.push(
          id ? `task ${id}` : `wave ${wave + 1}, task ${path[3] + 1}`,
          ...(path.length > 4 ? [path.slice(4).map(String).join(".")] : []),
        );
      } else {
        where.push(
          `wave ${wave + 1}`,
          ...(path.length > 2 ? [path.slice(2).map(String).join(".")] : []),
        );
      }
    } else if (path.length) {
      where.push(path.map(String).join("."));
    } else {
      where.push("plan");
    }
    return `${where.join(": ")}: ${issue.message}`;
  });
}

function taskIdAt(plan: unknown, wave: number, task: number): string | null {
  const w = (plan as { waves?: Array<{ tasks?: Array<{ id?: unknown }> }> } | null)?.waves?.[wave];
  const id = w?.tasks?.[task]?.id;
  return typeof id === "string" && id.length > 0 && id.length <= 80 ? id : null;
}
