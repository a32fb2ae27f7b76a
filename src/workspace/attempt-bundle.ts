/**
 * An attempt's commit on its way to the orchestrator: its bundle, thin
 * against the base (only the objects the commit added, deltas against the
 * base's), written as git's bundle v2 format — the header (`-<base>`, then
 * `<commit> refs/squad/bundle/<commit>`) and the pack of `git pack-objects
 * --revs --thin`, which is what `git bundle create` writes, in one git
 * process instead of a ref update and `bundle create`.
 */
import { bundleRef, packedBundle, type MissionRepo } from "./mission-repo.ts";
import { WorkspaceError } from "./workspace-errors.ts";
import { BUNDLE_BUCKET } from "./bundle-store.ts";
import type { CommitId } from "../schema/identifiers.ts";

/**
 * Upload the bundle of `commit` (whose only parent is `base`) unless the
 * store has it. The base must have its own bundle there (a fetch follows
 * the chain): a WorkspaceError says so otherwise.
 */
export async function publishAttemptCommit(
  repo: MissionRepo,
  commit: CommitId,
  base: CommitId,
): Promise<void> {
  const [stored, baseStored, bundle] = await Promise.all([
    repo.store.has(repo.missionId, commit),
    repo.store.has(repo.missionId, base),
    packedBundle(
      repo.gitDir,
      { prerequisites: [base], refs: [{ commit, ref: bundleRef(commit) }] },
      [commit, `^${base}`],
    ),
  ]);
  if (stored) return;
  if (!baseStored) {
    throw new WorkspaceError(
      `mission ${repo.missionId}: the bundle of ${commit} needs commit ${base}, which has no bundle of its own in ${BUNDLE_BUCKET}`,
      "publish the base first",
    );
  }
  await repo.store.put(repo.missionId, commit, bundle);
}
