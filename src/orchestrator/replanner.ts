import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "../backoff.ts";
import type { Publisher } from "../bus/index.ts";
import { ModelUnavailableError } from "../llm/errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent } from "../schema/index.ts";
import type { Roster } from "../workers/roster.ts";
import type { Brief } from "./brief.ts";
import type { PlanOutcome } from "./explicit-plan.ts";
import type { MissionRunner, ReplanCommand } from "./mission-runner.ts";
import { callPlanner } from "./planner-call.ts";

/** Tries of one replan while the planner's server is unavailable. */
const MAX_REPLAN_TRIES = 3;

export interface ReplannerOptions {
  publisher: Publisher;
  log: Logger;
  roster: Roster;
  /** SWARM_PLANNER_MODEL; without it a plan can not be revised. */
  plannerModel?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Aborts planner calls when the orchestrator stops. */
  signal: AbortSignal;
}

export type Replanner = (runner: MissionRunner, cmd: ReplanCommand) => Promise<void>;

/**
 * The machine asked for a revised plan (`request_replan`): ask the planner,
 * record the answer as mission_planned of the next revision, and give it to
 * the machine (`replan_result`), or the reason there is none.
 */
export function createReplanner(opts: ReplannerOptions): Replanner {
  const { publisher, log } = opts;
  return async function replan(runner, cmd) {
    if (!opts.plannerModel) {
      await runner.enqueue({
        type: "replan_result",
        now: Date.now(),
        error:
          "no planner model is configured (SWARM_PLANNER_MODEL), so the plan can not be revised",
      });
      return;
    }
    const brief: Brief = {
      title: runner.meta.title,
      agents: runner.meta.brief?.agents ?? null,
      budget: {},
      plan: null,
      body:
        runner.meta.brief?.body ??
        `# ${runner.meta.title}\n\n(The original brief is not available after a restart; the strategy of the plan that ran:)\n\n${cmd.plan.strategy}`,
      sourcePath: runner.meta.sourcePath,
    };
    let outcome: PlanOutcome;
    for (let tries = 1; ; tries++) {
      try {
        outcome = await callPlanner(
          opts.plannerModel,
          {
            brief,
            agents: opts.roster.agents,
            signal: opts.signal,
            previous: { plan: cmd.plan, results: cmd.results, failed: cmd.failed },
            missionId: runner.id,
          },
          opts.env,
        );
        break;
      } catch (err) {
        if (runner.abandoned) return;
        if (!(err instanceof ModelUnavailableError) || tries >= MAX_REPLAN_TRIES) throw err;
        log.warn({ mission: runner.id, err: err.message, tries }, "planner unavailable; retrying");
        await sleep(backoffDelay(tries, 2000, 8000));
      }
    }
    if (runner.abandoned) return;
    if (!outcome.ok) {
      await runner.enqueue({
        type: "replan_result",
        now: Date.now(),
        error: `the planner could not revise the plan: ${outcome.problems.join("; ")}`,
      });
      return;
    }
    const e = makeEvent(
      "mission_planned",
      { id: `${runner.id}.planned.${cmd.revision}`, mission_id: runner.id, source: "orchestrator" },
      {
        title: runner.meta.title,
        plan: outcome.plan,
        planner: opts.plannerModel,
        revision: cmd.revision,
        source_path: runner.meta.sourcePath,
      },
    );
    // Recorded first: the feed must not feed it back as a second answer.
    runner.recorded.add(e.id);
    await publisher.publish(e);
    await runner.enqueue({
      type: "replan_result",
      now: Date.parse(e.timestamp),
      plan: outcome.plan,
    });
  };
}
