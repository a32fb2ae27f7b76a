/**
 * After a chaos mission with a git workspace: was each task merged exactly
 * once? From the record (one accepted task_merged per task: the machine
 * takes the first answer for the attempt merging) and from the mission
 * branch itself (the final head's history, fetched from the bundle store,
 * holds each task's commit once, by its Squad-Task trailer).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { SquadEvent } from "../schema/index.ts";
import { bundleLimitsFromEnv, openBundleStore } from "../workspace/bundle-store.ts";
import { MissionRepo } from "../workspace/mission-repo.ts";

export interface MergeCheck {
  /** Whether the mission had a workspace at all (mission_planned.workspace). */
  git: boolean;
  merged: number;
  conflicted: number;
  problems: string[];
}

/** The tasks whose commits are in `events`' task_merged more than once, per attempt. */
export function repeatedMerges(events: readonly SquadEvent[]): string[] {
  const byAttempt = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.type !== "task_merged" || !e.task_id) continue;
    const key = `${e.task_id}#${e.payload.attempt}`;
    const merged = byAttempt.get(key) ?? new Set<string>();
    merged.add(e.payload.merged);
    byAttempt.set(key, merged);
  }
  const tasks = new Map<string, number>();
  for (const key of byAttempt.keys()) {
    const task = key.slice(0, key.lastIndexOf("#"));
    tasks.set(task, (tasks.get(task) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const [key, merged] of byAttempt) {
    if (merged.size > 1) out.push(`${key} merged as ${merged.size} different commits`);
  }
  for (const [task, n] of tasks) if (n > 1) out.push(`${task} merged in ${n} attempts`);
  return out;
}

export async function checkMergedOnce(
  nc: NatsConnection,
  missionId: string,
  events: readonly SquadEvent[],
): Promise<MergeCheck> {
  const git = events.some((e) => e.type === "mission_planned" && e.payload.workspace);
  const merged = events.filter((e) => e.type === "task_merged").length;
  const conflicted = events.filter((e) => e.type === "task_conflicted").length;
  const problems = git ? repeatedMerges(events) : [];
  const final = events.find((e) => e.type === "mission_completed" && e.source === "orchestrator");
  const head = final?.type === "mission_completed" ? final.payload.head : undefined;
  if (!git || !head) return { git, merged, conflicted, problems };
  const dir = await mkdtemp(path.join(os.tmpdir(), "squad-chaos-branch-"));
  try {
    const store = await openBundleStore(nc, bundleLimitsFromEnv(), { provision: false });
    const repo = await MissionRepo.open(dir, missionId, store);
    await repo.ensure(head);
    const seen = new Map<string, number>();
    for (const c of await repo.log(null, head)) {
      const task = c.trailers["Squad-Task"];
      if (task) seen.set(task, (seen.get(task) ?? 0) + 1);
    }
    for (const [task, n] of seen) {
      if (n > 1) problems.push(`task ${task} has ${n} commits on the mission branch`);
    }
    const mergedTasks = new Set(
      events.flatMap((e) => (e.type === "task_merged" ? [e.task_id] : [])),
    );
    for (const task of mergedTasks) {
      if (task && !seen.has(task))
        problems.push(`task ${task} was merged but is not on the branch`);
    }
  } catch (err) {
    problems.push(`the mission branch could not be read: ${errorMessage(err)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { git, merged, conflicted, problems };
}
