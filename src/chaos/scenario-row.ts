/**
 * What every scenario shares: the options, the row of the table it produces,
 * the tuning of the swarm, and the checks of the promise (nothing lost, every
 * execution announced).
 */
import type { MissionAccount } from "./accounting.ts";
import type { Injection } from "./injectors.ts";
import type { MissionRunResult, MissionRunSetup } from "./mission-run.ts";

export type ScenarioSize = "quick" | "full";

export interface ScenarioOptions {
  size: ScenarioSize;
  seed: number;
  log?: (line: string) => void;
  keep?: boolean;
}

/** One row of the table. */
export interface ScenarioRow {
  id: string;
  scenario: string;
  /** What was injected and how often. */
  injected: string;
  faults: number;
  size: ScenarioSize;
  seed: number;
  missionId: string;
  account: MissionAccount;
  durationMs: number;
  deployExit: number | null;
  restarts: { orchestrator: number; workers: number };
  /** Scenario-specific facts (model calls per task, DLQ counts...). */
  notes: string[];
  /** Did the run keep the promise: nothing lost, every execution announced, and the scenario's own checks? */
  ok: boolean;
  problems: string[];
  dir: string | null;
  /** Scenario-specific numbers for the tests. */
  details: Record<string, unknown>;
}

export interface Scenario {
  id: string;
  title: string;
  run(o: ScenarioOptions): Promise<ScenarioRow>;
}

export const CHAOS_TUNING: Record<string, string> = {
  SWARM_ACK_WAIT_MS: "5000",
  SWARM_LEASE_MS: "2500",
  SWARM_MISSION_LEASE_S: "3",
  SWARM_HEARTBEAT_MS: "2000",
};

/** The agents of every chaos mission (the default roster's). */
export const AGENTS = ["builder", "tester"] as const;

/** The checks every scenario shares: nothing lost, every execution announced by a task_started. */
function commonProblems(run: MissionRunResult, mustComplete: boolean): string[] {
  const a = run.account;
  const problems: string[] = [];
  if (a.status === "no final event") problems.push("the mission never ended");
  if (a.lost > 0) problems.push(`${a.lost} task(s) lost: ${a.lostTasks.slice(0, 10).join(", ")}`);
  if (a.unexplainedExecutions > 0)
    problems.push(`${a.unexplainedExecutions} execution(s) without a task_started event`);
  if (mustComplete && a.status !== "completed")
    problems.push(`the mission ${a.status}${a.reason ? `: ${a.reason}` : ""}`);
  if (mustComplete && run.deployExit !== 0)
    problems.push(`the launcher exited with ${run.deployExit}, not 0`);
  return problems;
}

export function row(
  s: { id: string; title: string },
  o: ScenarioOptions,
  run: MissionRunResult,
  injected: string,
  injections: Injection[],
  extra: { notes?: string[]; problems?: string[]; details?: Record<string, unknown> } = {},
  mustComplete = true,
): ScenarioRow {
  const problems = [...commonProblems(run, mustComplete), ...(extra.problems ?? [])];
  return {
    id: s.id,
    scenario: s.title,
    injected,
    faults: injections.length,
    size: o.size,
    seed: o.seed,
    missionId: run.missionId,
    account: run.account,
    durationMs: run.durationMs,
    deployExit: run.deployExit,
    restarts: run.restarts,
    notes: extra.notes ?? [],
    ok: problems.length === 0,
    problems,
    dir: run.kept ? run.dir : null,
    details: { injections, ...extra.details },
  };
}

export function setup(
  o: ScenarioOptions,
  s: Omit<MissionRunSetup, "log" | "keep" | "env"> & { env?: Record<string, string> },
): MissionRunSetup {
  return {
    ...s,
    env: { ...CHAOS_TUNING, ...s.env },
    ...(o.log ? { log: o.log } : {}),
    ...(o.keep ? { keep: true } : {}),
  };
}
