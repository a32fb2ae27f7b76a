/**
 * What happened to every task of a chaos mission (pure): from the plan, the
 * mission's recorded events and the run logs (one line per execution), the
 * numbers of the table.
 *
 * - succeeded: a worker reported task_completed AND its side effect exists
 *   (a success without one would be a lie, and counts as lost);
 * - failed: the mission's failure names it, with its reason;
 * - skipped: not run or cut short because the mission failed or was
 *   cancelled (the mission's final event gives the reason);
 * - lost: none of these: never run, or run with no outcome anyone reported,
 *   or "completed" by a mission that claims success without it;
 * - executions: lines in the run logs; duplicated = executions beyond the
 *   first, per task (at-least-once delivery shows up here, and only here);
 * - unexplained executions: lines beyond the task's task_started events
 *   (every execution is announced first, so this must be 0).
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { isFinalMissionEvent, type SquadEvent } from "../schema/index.ts";

export type MissionStatus = "completed" | "failed" | "cancelled" | "no final event";

export interface MissionAccount {
  status: MissionStatus;
  /** The mission_failed / mission_cancelled reason. */
  reason: string | null;
  tasks: number;
  succeeded: number;
  failed: number;
  skipped: number;
  lost: number;
  lostTasks: string[];
  executions: number;
  duplicatedExecutions: number;
  tasksRunMoreThanOnce: number;
  /** task_started events (one per delivery that began work). */
  starts: number;
  /** task_completed events (the same attempt may report twice; the stream dedupes by id). */
  completions: number;
  /** Attempts dispatched beyond the first, per task (retries after a failure or timeout). */
  extraAttempts: number;
  unexplainedExecutions: number;
  /** Failed tasks with their reasons. */
  failures: Array<{ id: string; error: string }>;
}

export function accountMission(input: {
  taskIds: readonly string[];
  events: readonly SquadEvent[];
  runLines: Readonly<Record<string, number>>;
}): MissionAccount {
  const { taskIds, events, runLines } = input;
  const planned = new Set(taskIds);
  // Events about other task ids (a forged or confused client) are not this mission's work.
  const count = (type: SquadEvent["type"]) => {
    const by: Record<string, number> = {};
    for (const e of events)
      if (e.type === type && e.task_id && planned.has(e.task_id))
        by[e.task_id] = (by[e.task_id] ?? 0) + 1;
    return by;
  };
  const starts = count("task_started");
  const completions = count("task_completed");
  const final = events.find(isFinalMissionEvent);
  const failures =
    final?.type === "mission_failed"
      ? final.payload.failed_tasks.map((f) => ({ id: f.id, error: f.error }))
      : [];
  const failedIds = new Set(failures.map((f) => f.id));

  const endedWithReason = final !== undefined && final.type !== "mission_completed";
  let succeeded = 0;
  let skipped = 0;
  const lostTasks: string[] = [];
  for (const id of taskIds) {
    if ((completions[id] ?? 0) > 0 && (runLines[id] ?? 0) > 0) succeeded++;
    else if (failedIds.has(id)) continue;
    else if (endedWithReason) skipped++;
    else lostTasks.push(id);
  }
  let executions = 0;
  let duplicated = 0;
  let twice = 0;
  let unexplained = 0;
  for (const id of taskIds) {
    const lines = runLines[id] ?? 0;
    executions += lines;
    duplicated += Math.max(0, lines - 1);
    if (lines > 1) twice++;
    unexplained += Math.max(0, lines - (starts[id] ?? 0));
  }
  const attempts = new Map<string, Set<number>>();
  for (const e of events) {
    if (e.type !== "task_started" || !e.task_id || !planned.has(e.task_id)) continue;
    const set = attempts.get(e.task_id) ?? new Set<number>();
    set.add(e.payload.attempt);
    attempts.set(e.task_id, set);
  }
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return {
    status: !final
      ? "no final event"
      : final.type === "mission_completed"
        ? "completed"
        : final.type === "mission_failed"
          ? "failed"
          : "cancelled",
    reason:
      final?.type === "mission_failed" || final?.type === "mission_cancelled"
        ? final.payload.reason
        : null,
    tasks: taskIds.length,
    succeeded,
    failed: taskIds.filter((id) => failedIds.has(id)).length,
    skipped,
    lost: lostTasks.length,
    lostTasks,
    executions,
    duplicatedExecutions: duplicated,
    tasksRunMoreThanOnce: twice,
    starts: sum(starts),
    completions: sum(completions),
    extraAttempts: [...attempts.values()].reduce((n, s) => n + Math.max(0, s.size - 1), 0),
    unexplainedExecutions: unexplained,
    failures,
  };
}

/** Lines per task in `<missionWorkspace>/runs/<task>.log` (absent folder: none ran). */
export async function readRunLines(runsDir: string): Promise<Record<string, number>> {
  let files: string[];
  try {
    files = await readdir(runsDir);
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  await Promise.all(
    files
      .filter((f) => f.endsWith(".log"))
      .map(async (f) => {
        const text = await readFile(path.join(runsDir, f), "utf8");
        out[f.slice(0, -4)] = text.split("\n").filter((l) => l.trim()).length;
      }),
  );
  return out;
}
