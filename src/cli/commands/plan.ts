import { Option, type Command } from "commander";
import { BadInputError, errorMessage, WorkFailedError } from "../../errors.ts";
import { planFromBrief, type PlanOutcome } from "../../orchestrator/explicit-plan.ts";
import type { Brief } from "../../orchestrator/brief.ts";
import type { Roster } from "../../workers/roster.ts";
import { useColor } from "../color.ts";
import { allowWorkspaceOption, resolveCommon } from "../options.ts";
import { formatPlan } from "../plan-view.ts";
import { readBriefFile } from "../../client/brief-file.ts";

interface PlanFlags {
  roster?: string;
  planner?: string;
  json?: boolean;
  allowWorkspace?: string[];
}

/** The planner model gave up: its last problems, for a person to read (exit 1). */
export class PlanningFailedError extends WorkFailedError {
  override readonly name = "PlanningFailedError";
  readonly problems: string[];
  constructor(spec: string, attempts: number, problems: string[]) {
    super(
      `the planner (${spec}) gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}:\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.problems = problems;
  }
}

export function registerPlanCommand(program: Command): void {
  program
    .command("plan")
    .description("show the plan a brief would run (its explicit plan, or the planner's); no NATS")
    .argument("<brief>", "mission brief (Markdown); - reads it from stdin")
    .option("--json", "print the normalized plan as JSON (usable as a brief's explicit plan)")
    .addOption(
      new Option("--planner <spec>", "planner model for briefs without a plan").env(
        "SWARM_PLANNER_MODEL",
      ),
    )
    .addOption(new Option("--roster <file>", "roster file (YAML or JSON)").env("SWARM_ROSTER"))
    .addOption(allowWorkspaceOption())
    .addHelpText(
      "after",
      `
A brief with an explicit plan is checked against the roster and shown; no model
is called. Without one, the planner model writes it (SWARM_PLANNER_MODEL, e.g.
openai:gpt-4.1 or ollama:qwen2.5:14b), exactly as the orchestrator would.

Examples:
  $ swarm plan mission-briefs/demo-library.md
  $ swarm plan mission-briefs/demo-library.md --json | jq '.waves[].tasks[].id'
  $ SWARM_PLANNER_MODEL=openai:gpt-4.1 swarm plan my-brief.md

Exit codes: 0 ok, 1 the planner gave up, 2 bad brief or no planner model,
3 model server unavailable.`,
    )
    .action(async (file: string, flags: PlanFlags) => {
      const common = resolveCommon({ ...(flags.roster ? { roster: flags.roster } : {}) });
      const { brief, roster } = await readBriefFile(file, common.rosterPath, flags.allowWorkspace);
      const agents = roster.agents.map((a) => a.name);
      let planner: string | null = null;
      let outcome: PlanOutcome;
      if (brief.plan) {
        outcome = planFromBrief(brief, { agents });
        if (!outcome.ok) {
          throw new BadInputError(
            `the brief's plan can not run with this roster:\n${outcome.problems.map((p) => `  - ${p}`).join("\n")}`,
          );
        }
      } else {
        planner = flags.planner?.trim() || null;
        if (!planner) {
          throw new BadInputError(
            `${file} has no explicit plan, and no planner model is set: set SWARM_PLANNER_MODEL ` +
              "(e.g. openai:gpt-4.1 or ollama:qwen2.5:14b) or pass --planner",
          );
        }
        outcome = await planWithModel(planner, brief, roster);
        if (!outcome.ok) throw new PlanningFailedError(planner, outcome.attempts, outcome.problems);
      }
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(outcome.plan, null, 2)}\n`
          : formatPlan(
              {
                title: brief.title,
                plan: outcome.plan,
                planner,
                attempts: outcome.attempts,
                usage: outcome.usage,
              },
              useColor(),
            ),
      );
    });
}

/** LangChain loads only here: explicit plans are shown without it. */
async function planWithModel(spec: string, brief: Brief, roster: Roster): Promise<PlanOutcome> {
  const [
    { planMission },
    { createChatModel },
    { classifyModelError, ModelUnavailableError },
    { resolveModelEndpoint },
  ] = await Promise.all([
    import("../../orchestrator/planner.ts"),
    import("../../llm/chat-model.ts"),
    import("../../llm/errors.ts"),
    import("../../llm/model-endpoint.ts"),
  ]);
  const model = createChatModel(spec);
  try {
    return await planMission({ model, brief, agents: roster.agents });
  } catch (err) {
    const classified = classifyModelError(err, spec, resolveModelEndpoint(spec).url);
    if (classified instanceof ModelUnavailableError) throw classified;
    throw new WorkFailedError(`the planner call failed: ${errorMessage(err)}`, { cause: err });
  }
}
