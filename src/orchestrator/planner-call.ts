import { classifyModelError } from "../llm/errors.ts";
import { resolveModelEndpoint } from "../llm/model-endpoint.ts";
import { inMissionSpan, metrics } from "../telemetry/index.ts";
import type { Roster } from "../workers/roster.ts";
import type { Brief } from "./brief.ts";
import type { PlanOutcome } from "./explicit-plan.ts";
import type { ReplanContext } from "./planner.ts";

export interface PlannerCall {
  brief: Brief;
  agents: Roster["agents"];
  signal: AbortSignal;
  /** For a replan: the plan that ran and how it went. */
  previous?: ReplanContext;
  /** The mission planned: the call is a span of its trace, its tokens counted for "planner". */
  missionId?: string;
}

/** planMission with the model loaded on first use; model outages come out classified. */
export async function callPlanner(
  spec: string,
  args: PlannerCall,
  env: NodeJS.ProcessEnv | undefined,
): Promise<PlanOutcome> {
  if (!args.missionId) return plannerAnswer(spec, args, env);
  const outcome = await inMissionSpan(args.missionId, args.previous ? "replan" : "plan", () =>
    plannerAnswer(spec, args, env),
  );
  metrics.modelTokens("planner", spec, outcome.usage.input_tokens, outcome.usage.output_tokens);
  return outcome;
}

async function plannerAnswer(
  spec: string,
  args: PlannerCall,
  env: NodeJS.ProcessEnv | undefined,
): Promise<PlanOutcome> {
  const { planMission, createChatModel } = await loadPlanner();
  try {
    return await planMission({
      model: createChatModel(spec, { env }),
      brief: args.brief,
      agents: args.agents,
      signal: args.signal,
      ...(args.previous ? { previous: args.previous } : {}),
    });
  } catch (err) {
    throw classifyModelError(err, spec, endpointUrl(spec, env));
  }
}

function endpointUrl(spec: string, env: NodeJS.ProcessEnv | undefined): string | undefined {
  try {
    return resolveModelEndpoint(spec, env ?? process.env).url;
  } catch {
    return undefined;
  }
}

/** LangChain loads only when a model is used: explicit plans start faster without it. */
async function loadPlanner() {
  const [{ planMission }, { createChatModel }] = await Promise.all([
    import("./planner.ts"),
    import("../llm/chat-model.ts"),
  ]);
  return { planMission, createChatModel };
}
