/**
 * What the planner model reads: the rules of a plan, the brief, the agents it
 * may use and, on a replan, what happened so far. Kept apart from the planner
 * logic so the wording can be tuned (and reviewed) on its own.
 */
import type { Brief } from "./brief.ts";

/** Name of the tool (functionCalling) or schema (jsonSchema) the plan is submitted through. */
export const PLAN_TOOL_NAME = "submit_plan";

export interface PlannerAgent {
  name: string;
  /** What the planner reads to assign work (from the roster). */
  description: string;
}

/** What a replan knows: the plan that ran, every task's outcome, and what failed. */
export interface ReplanContext {
  plan: {
    strategy?: string;
    waves: Array<{ wave: number; tasks: Array<{ id: string; title: string }> }>;
  };
  results: ReadonlyArray<{
    id: string;
    status: string;
    agent?: string;
    title?: string;
    summary?: string | null;
    error?: string | null;
    attempts?: number;
  }>;
  /** `files`: what its commit conflicted on in the merge queue (git workspaces). */
  failed: ReadonlyArray<{ id: string; error: string; files?: readonly string[] }>;
}

export function plannerSystemPrompt(): string {
  return `You are the planner of Squad, a swarm of AI agents that carry out software missions.
You turn a mission brief into a plan: waves of tasks, each given to one agent. You do not do
the work yourself. Submit the plan by calling ${PLAN_TOOL_NAME} (or, when asked for JSON, by
replying with the plan as one JSON object).

Rules of a plan:
- Use only the agents listed in the request, by their exact name.
- Every task has an id that is unique in the whole plan: short, letters, digits, "_" or "-"
  (t1, t2, build_api, ...). Ids appear in file names and message ids.
- Waves are numbered 1, 2, 3, ... in order. A task may depend only on tasks of its own or an
  earlier wave, never on a later wave, and dependencies must not form a cycle.
- depends_on lists the ids of the tasks that must succeed before this one starts; [] for none.
  A task starts as soon as all of its dependencies succeeded, so independent work runs in
  parallel: put it in the same wave with no dependency between the tasks.
- Workers start each task with a fresh memory. instructions must say everything the agent
  needs: what to make or change, which files, which conventions. Every task of the mission
  works in the same workspace directory, so a later task sees the files an earlier one wrote;
  use paths relative to it. A dependency's result summary is passed to its dependents.
- acceptance says in one or two sentences what is true when the task is done.
- verify holds shell commands that check the work and exit 0 only when it is right, for
  example \`test -f src/app.ts\`, \`grep -q "export function add" src/math.ts\`, \`npm test\`.
  They are commands, not prose. Prefer at least one check per task.
- run holds shell commands executed in order without a model, for steps whose exact commands
  are known (e.g. \`mkdir -p out\`, \`npm init -y\`). Leave it [] when the agent should work.
- Keep the plan small: as few tasks as do the job, each a coherent piece of work.
- strategy explains the approach in a few sentences; risks and success_criteria are short lists.`;
}

export function plannerUserPrompt(args: {
  brief: Brief;
  agents: readonly PlannerAgent[];
  previous?: ReplanContext;
}): string {
  const { brief, agents, previous } = args;
  const parts: string[] = [];
  parts.push(`# Mission: ${brief.title}`);
  parts.push(`## Brief\n\n${brief.body || "(no body)"}`);
  parts.push(
    `## Agents you may use\n\n${agents.map((a) => `- ${a.name}: ${a.description.trim() || "(no description)"}`).join("\n")}`,
  );
  const limits: string[] = [];
  if (brief.budget.tokens !== undefined)
    limits.push(`at most ${brief.budget.tokens} model tokens in all`);
  if (brief.budget.time_s !== undefined)
    limits.push(`at most ${brief.budget.time_s} seconds in all`);
  if (limits.length)
    parts.push(`## Budget\n\nThe mission must finish within ${limits.join(" and ")}.`);

  if (previous) {
    const line = (r: ReplanContext["results"][number]) => {
      const what = r.title ? ` "${r.title}"` : "";
      const who = r.agent ? ` (${r.agent})` : "";
      const tries = r.attempts ? `, ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}` : "";
      const detail =
        r.status === "succeeded"
          ? r.summary
            ? `: ${r.summary}`
            : ""
          : r.error
            ? `: ${r.error}`
            : "";
      return `- ${r.id}${what}${who}: ${r.status}${tries}${detail}`;
    };
    const done = previous.results.filter((r) => r.status === "succeeded");
    const rest = previous.results.filter(
      (r) => r.status !== "succeeded" && r.status !== "superseded",
    );
    parts.push(
      [
        "## This is a replan",
        "",
        "The current plan ran into failures it cannot recover from by retrying.",
        previous.plan.strategy ? `Its strategy was: ${previous.plan.strategy}` : "",
        "",
        "What failed:",
        ...previous.failed.map(
          (f) =>
            `- ${f.id}: ${f.error}` +
            (f.files?.length
              ? `\n  Its changes conflict with work already merged, in: ${f.files.join(", ")}. ` +
                "The revised task must start from the merged files and change them compatibly."
              : ""),
        ),
        "",
        "Tasks that succeeded (their work is in the workspace; they will not run again):",
        ...(done.length ? done.map(line) : ["- none"]),
        "",
        "Tasks that did not succeed:",
        ...(rest.length ? rest.map(line) : ["- none"]),
        "",
        "Write a revised plan for the REMAINING work only. You may depend on the ids of succeeded",
        "tasks without listing them again. Fix the cause of the failure: change the approach, split",
        "the task, or correct its instructions or checks; do not simply repeat what failed. You may",
        "reuse the id of a failed task for its corrected version.",
      ]
        .filter((l, i, all) => l !== "" || all[i - 1] !== "")
        .join("\n"),
    );
  }
  parts.push(`Submit the plan with ${PLAN_TOOL_NAME}.`);
  return parts.join("\n\n");
}

/** The message that sends an invalid plan back to the model. */
export function repairPrompt(problems: readonly string[]): string {
  return [
    "That plan cannot be used. Problems:",
    ...problems.map((p) => `- ${p}`),
    "",
    `Fix every problem and submit the whole corrected plan again with ${PLAN_TOOL_NAME}.`,
  ].join("\n");
}
