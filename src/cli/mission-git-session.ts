/**
 * What `swarm diff / log / export / deliver / revert` share: the mission's
 * events replayed from SQUAD_EVENTS (each checked by the event guard, so a
 * forged task_merged names no commit), what they say about its repository
 * (client/mission-git-facts.ts), and the CLI's cache repository of the
 * mission, which fetches bundles from the object store as needed.
 */
import { replayEvents, type NatsConnection } from "../bus/index.ts";
import { missionGitFacts, type MissionGitFacts } from "../client/mission-git-facts.ts";
import { openCliMissionRepo, readWorkspaceRecord } from "../client/mission-workspace.ts";
import { BadInputError } from "../errors.ts";
import { MissionId, type CommitId, type SquadEvent } from "../schema/index.ts";
import type { MissionRepo } from "../workspace/mission-repo.ts";
import { openCliGuard } from "./cli-guard.ts";
import { connectCliBus } from "./commands/approve.ts";
import type { Resolved } from "./options.ts";

export interface MissionGitSession {
  facts: MissionGitFacts;
  repo: MissionRepo;
  nc: NatsConnection;
  close(): Promise<void>;
}

export function checkMissionId(mission: string): void {
  if (!MissionId.safeParse(mission).success) {
    throw new BadInputError(`${JSON.stringify(mission)} is not a mission id`);
  }
}

/** Connects, replays the mission's events, opens its cache repository. The caller closes it. */
export async function openMissionGit(
  common: Resolved,
  missionId: string,
  name: string,
): Promise<MissionGitSession> {
  checkMissionId(missionId);
  // Only reads: events and bundles (a watcher may read both).
  const nc = await connectCliBus(common, name, "watcher");
  try {
    const guard = await openCliGuard(nc, { publishes: false });
    const events: SquadEvent[] = [];
    for await (const { event, message } of replayEvents(nc, { missionId })) {
      if (guard.admit(message, event).accept) events.push(event);
    }
    if (events.length === 0) {
      throw new BadInputError(
        `no events of mission ${missionId} in SQUAD_EVENTS (wrong id, or older than its max age)`,
      );
    }
    const facts = missionGitFacts(events, missionId);
    facts.workspace ??= await readWorkspaceRecord(common.stateDir, missionId);
    const repo = await openCliMissionRepo(nc, common.stateDir, missionId);
    return { facts, repo, nc, close: () => nc.drain() };
  } catch (err) {
    await nc.drain().catch(() => undefined);
    throw err;
  }
}

/** The mission's base, or a BadInputError for a mission without git workspaces. */
export function baseOf(facts: MissionGitFacts): CommitId {
  const base = facts.workspace?.base;
  if (!base) {
    throw new BadInputError(
      `mission ${facts.missionId} has no repository in its events (it ran without git workspaces)`,
    );
  }
  return base;
}

/**
 * The head to show or write: the final head of a completed mission; of a
 * failed, cancelled or running one only with `partial` (its merged tasks so
 * far), else a BadInputError that says where the partial head is.
 */
export function headOf(facts: MissionGitFacts, partial: boolean): CommitId {
  const head = facts.head;
  if (head === null) {
    throw new BadInputError(
      `mission ${facts.missionId} recorded no head commit (it ran without git workspaces)`,
    );
  }
  if (facts.final?.type === "mission_completed" || partial) return head;
  const state =
    facts.final === null
      ? "has not ended yet"
      : facts.final.type === "mission_failed"
        ? "failed"
        : "was cancelled";
  throw new BadInputError(
    `mission ${facts.missionId} ${state}: its partial head (the tasks merged so far) is ${head}; ` +
      "add --partial to use it",
  );
}
