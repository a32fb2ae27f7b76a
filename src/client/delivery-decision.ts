/**
 * What to do with a mission's head once it has ended (pure): deliver it as
 * branch squad/<mission> into the workspace repository, push it, or tell the
 * person where it is. A completed mission delivers; a failed or cancelled
 * one delivers nothing unless asked (`--partial`), and says where its
 * partial head is.
 */
import type { CommitId } from "../schema/identifiers.ts";
import type { MissionWorkspace } from "../schema/events.ts";

export type MissionEnd = "mission_completed" | "mission_failed" | "mission_cancelled";

export interface DeliveryRequest {
  missionId: string;
  end: MissionEnd | null;
  head: CommitId | null;
  workspace: MissionWorkspace | null;
  /** --push REMOTE, else the brief's deliver.push. */
  push: string | null;
  /** Deliver a failed or cancelled mission's partial head too. */
  partial: boolean;
}

export type DeliveryStep =
  { kind: "branch"; repoDir: string } | { kind: "push"; remote: string; fromDir: string | null };

export type DeliveryDecision =
  | { kind: "deliver"; head: CommitId; steps: DeliveryStep[]; notes: string[] }
  | { kind: "nothing"; notes: string[] };

export function decideDelivery(r: DeliveryRequest): DeliveryDecision {
  const exportHint = (partial: boolean) =>
    `swarm export ${r.missionId}${partial ? " --partial" : ""} DIR`;
  if (r.end === null) {
    return {
      kind: "nothing",
      notes: [`mission ${r.missionId} has not ended yet: nothing to deliver`],
    };
  }
  if (r.head === null) {
    return {
      kind: "nothing",
      notes: [
        `mission ${r.missionId} recorded no head commit (it ran without git workspaces): nothing to deliver`,
      ],
    };
  }
  const completed = r.end === "mission_completed";
  if (!completed && !r.partial) {
    const how = r.end === "mission_failed" ? "failed" : "was cancelled";
    return {
      kind: "nothing",
      notes: [
        `mission ${r.missionId} ${how}: nothing delivered. Its partial head (the tasks merged so far) ` +
          `is ${r.head}; write it with ${exportHint(true)} or swarm deliver ${r.missionId} --partial`,
      ],
    };
  }
  const steps: DeliveryStep[] = [];
  const notes: string[] = [];
  const gitRepo = r.workspace?.source === "git" && r.workspace.path ? r.workspace.path : null;
  if (gitRepo) {
    steps.push({ kind: "branch", repoDir: gitRepo });
  } else if (r.push === null) {
    const what =
      r.workspace?.source === "directory"
        ? `its workspace ${r.workspace.path ?? ""} is not a git repository`.replace("  ", " ")
        : "it had no workspace";
    notes.push(
      `mission ${r.missionId}: ${what}, so there is no branch to deliver into; its head is ${r.head}: ` +
        `write it as a new repository with ${exportHint(!completed)}`,
    );
  }
  if (r.push !== null) steps.push({ kind: "push", remote: r.push, fromDir: gitRepo });
  if (steps.length === 0) return { kind: "nothing", notes };
  return { kind: "deliver", head: r.head, steps, notes };
}
