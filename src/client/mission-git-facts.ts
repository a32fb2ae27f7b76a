/**
 * What a mission's events say about its repository (pure): where it started
 * (mission_planned.workspace, copied there from the submission), which
 * commit each task put on the mission branch (task_merged), and where the
 * branch ended (the final event's head). `swarm diff/log/export/deliver/
 * revert` read this, then fetch the commits it names.
 */
import { isFinalMissionEvent } from "../schema/event-groups.ts";
import type { CommitId } from "../schema/identifiers.ts";
import type { MissionWorkspace, SquadEvent } from "../schema/events.ts";

export interface TaskMerge {
  task_id: string;
  attempt: number;
  /** The attempt's own commit, and the one on the branch for it (rebased unless a fast-forward). */
  commit: CommitId;
  merged: CommitId;
  onto: CommitId;
  head: CommitId;
  fast_forward: boolean;
}

export interface MissionGitFacts {
  missionId: string;
  workspace: MissionWorkspace | null;
  /** Task id → its title and agent, from the latest plan. */
  tasks: Record<string, { title: string; agent: string }>;
  /** In branch order. */
  merges: TaskMerge[];
  final: {
    type: "mission_completed" | "mission_failed" | "mission_cancelled";
    head: CommitId | null;
  } | null;
  /** The branch's head as far as the events go: the final head, else the last merge, else the base. */
  head: CommitId | null;
}

export function missionGitFacts(events: readonly SquadEvent[], missionId: string): MissionGitFacts {
  const facts: MissionGitFacts = {
    missionId,
    workspace: null,
    tasks: {},
    merges: [],
    final: null,
    head: null,
  };
  for (const e of events) {
    if (e.mission_id !== missionId) continue;
    if (e.type === "mission_submitted" && e.payload.workspace) {
      facts.workspace ??= e.payload.workspace;
    } else if (e.type === "mission_planned") {
      if (e.payload.workspace) facts.workspace = e.payload.workspace;
      for (const wave of e.payload.plan.waves) {
        for (const t of wave.tasks) facts.tasks[t.id] = { title: t.title, agent: t.agent };
      }
    } else if (e.type === "task_merged" && e.task_id !== null) {
      // A restarted orchestrator may say it twice: the branch holds it once.
      if (facts.merges.some((m) => m.merged === e.payload.merged)) continue;
      facts.merges.push({ task_id: e.task_id, ...e.payload });
    } else if (isFinalMissionEvent(e)) {
      facts.final = { type: e.type, head: e.payload.head ?? null };
    }
  }
  // An ended mission's head is the one its final event names: none, it ran without git
  // workspaces (an orchestrator from before them), whatever a local record says the base was.
  facts.head = facts.final
    ? facts.final.head
    : (facts.merges.at(-1)?.head ?? facts.workspace?.base ?? null);
  return facts;
}

/** The last commit the branch holds for `taskId` (a task merged again after a revert: the latest). */
export function mergeOf(facts: MissionGitFacts, taskId: string): TaskMerge | null {
  return facts.merges.findLast((m) => m.task_id === taskId) ?? null;
}
