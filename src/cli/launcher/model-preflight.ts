/**
 * Before starting anything for a brief that needs a model: does each model
 * server answer at all? A mission whose model server is down would only fail
 * after minutes of retries; the contract says exit 3 (infrastructure) at once.
 * Any HTTP answer counts (a 401 is the worker's problem to report, not ours).
 */
import { InfrastructureError } from "../../errors.ts";
import { resolveModelEndpoint } from "../../llm/model-endpoint.ts";
import type { Brief } from "../../orchestrator/brief.ts";
import type { Roster } from "../../workers/roster.ts";

export interface ModelNeed {
  spec: string;
  /** `planner` or `agent builder`: named in the error. */
  who: string;
}

/**
 * Pure: models the mission will call. Without an explicit plan: the planner
 * and every agent that may get work; with one: the agents of its tasks that
 * have no `run` steps (those run without a model).
 */
export function modelsNeeded(
  brief: Pick<Brief, "plan">,
  roster: Roster,
  agents: readonly string[],
  env: { SWARM_PLANNER_MODEL?: string | undefined; SWARM_WORKER_MODEL: string },
): ModelNeed[] {
  const modelOf = (agent: string) =>
    roster.agents.find((a) => a.name === agent)?.model ?? env.SWARM_WORKER_MODEL;
  const needs: ModelNeed[] = [];
  const add = (spec: string, who: string) => {
    if (!needs.some((n) => n.spec === spec && n.who === who)) needs.push({ spec, who });
  };
  if (!brief.plan) {
    if (env.SWARM_PLANNER_MODEL) add(env.SWARM_PLANNER_MODEL, "planner");
    for (const a of agents) add(modelOf(a), `agent ${a}`);
    return needs;
  }
  for (const w of brief.plan.waves) {
    // An explicit `run` list, even an empty one, means no model (src/workers/task-executor.ts).
    for (const t of w.tasks) if (!t.run) add(modelOf(t.agent), `agent ${t.agent}`);
  }
  return needs;
}

/** Throws an InfrastructureError naming the first server that does not answer. */
export async function checkModelServers(
  needs: readonly ModelNeed[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 3000,
): Promise<void> {
  const byUrl = new Map<string, { probe: string; needs: ModelNeed[] }>();
  for (const n of needs) {
    const ep = resolveModelEndpoint(n.spec, env);
    const probe = ep.provider === "ollama" ? `${ep.url}/api/tags` : `${ep.url}/models`;
    const entry = byUrl.get(ep.url) ?? { probe, needs: [] };
    entry.needs.push(n);
    byUrl.set(ep.url, entry);
  }
  await Promise.all(
    [...byUrl].map(async ([url, { probe, needs: users }]) => {
      try {
        const res = await fetch(probe, { signal: AbortSignal.timeout(timeoutMs) });
        await res.body?.cancel();
      } catch (err) {
        const cause =
          err instanceof Error
            ? ((err.cause as Error | undefined)?.message ?? err.message)
            : String(err);
        const who = users.map((u) => `${u.who} (${u.spec})`).join(", ");
        throw new InfrastructureError(
          `the model server at ${url} does not answer (${cause}); needed by ${who}`,
          "start it (e.g. `ollama serve`), or point OLLAMA_HOST / OPENAI_BASE_URL at one that runs",
          { cause: err },
        );
      }
    }),
  );
}
