import type { Usage } from "../schema/result.ts";
import type { Brief } from "./brief.ts";
import { validatePlan, type NormalizedPlan } from "./plan-validation.ts";

// Apart from planner.ts so that running a brief with an explicit plan never loads LangChain.

export type PlanOutcome =
  | { ok: true; plan: NormalizedPlan; attempts: number; usage: Usage }
  | { ok: false; problems: string[]; attempts: number; usage: Usage };

/**
 * The brief's explicit plan, checked against the agents available now; no
 * model involved. (parseBrief validated it already; the roster may differ.)
 */
export function planFromBrief(
  brief: Brief,
  opts: { agents?: readonly string[] } = {},
): PlanOutcome {
  const usage: Usage = { model: null, input_tokens: 0, output_tokens: 0 };
  if (!brief.plan) {
    return { ok: false, problems: ["the brief has no explicit plan"], attempts: 0, usage };
  }
  const allowed = brief.agents ?? opts.agents ?? null;
  const v = validatePlan(brief.plan, { agents: allowed });
  return v.ok
    ? { ok: true, plan: v.plan, attempts: 0, usage }
    : { ok: false, problems: v.problems, attempts: 0, usage };
}
