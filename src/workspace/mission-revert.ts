/**
 * `swarm revert <mission> <task>`: undo one task's work after the mission,
 * as a revert commit on top of the delivered branch `squad/<mission>` of a
 * repository (the workspace repository, or an export). Exactly:
 *
 * - the branch must exist there and contain the task's merged commit;
 * - the commit made is git's own revert of that commit (three-way, so later
 *   tasks' changes stay), on top of the branch's current tip, with message
 *   `Revert "<subject>"` and trailers Squad-Mission and Squad-Reverts-Task;
 *   its author is you (your git identity), or `squad` when git has none;
 * - when the branch is checked out there, the revert is made in that
 *   working tree (which must be clean), like `git revert` would; otherwise
 *   in a temporary worktree, then the branch alone moves forward to it, so
 *   your working tree, index and current branch are untouched;
 * - a revert that conflicts with later changes changes nothing and names
 *   the files.
 *
 * The mission's own events and the object store are not changed: the
 * revert lives in that repository only (push it like any commit).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BadInputError } from "../errors.ts";
import type { CommitId } from "../schema/index.ts";
import { branchTip, deliveryBranch } from "./delivery.ts";
import { dirtyPaths, SQUAD_IDENTITY, workspaceKind } from "./mission-base.ts";
import { runUserGit, UserGitError } from "./user-git.ts";

export interface Reverted {
  branch: string;
  /** The revert commit, now the branch's tip. */
  commit: CommitId;
  /** The commit it reverts (the task's commit on the mission branch). */
  reverts: CommitId;
  /** The branch was checked out: its working tree has the revert too. */
  checkedOut: boolean;
  repoDir: string;
}

export async function revertTask(opts: {
  repoDir: string;
  missionId: string;
  taskId: string;
  /** The task's commit on the mission branch (task_merged.merged). */
  merged: CommitId;
}): Promise<Reverted> {
  const dir = path.resolve(opts.repoDir);
  const kind = await workspaceKind(dir).catch(() => ({ kind: "missing" as const }));
  if (kind.kind !== "git") {
    throw new BadInputError(
      `${dir} is not a git repository's working tree: revert on the delivered branch, in the ` +
        `workspace repository (swarm deliver ${opts.missionId}) or an export (swarm export ` +
        `${opts.missionId} DIR, then --repo DIR)`,
    );
  }
  const branch = deliveryBranch(opts.missionId);
  const ref = `refs/heads/${branch}`;
  const tip = await branchTip(dir, ref);
  if (tip === null) {
    throw new BadInputError(
      `${dir} has no branch ${branch}: deliver the mission first (swarm deliver ${opts.missionId}, ` +
        `or swarm export ${opts.missionId} DIR and then revert with --repo DIR)`,
    );
  }
  const onBranch = await runUserGit(["merge-base", "--is-ancestor", opts.merged, tip], {
    cwd: dir,
  }).then(
    () => true,
    () => false,
  );
  if (!onBranch) {
    throw new BadInputError(
      `task ${opts.taskId}'s commit ${opts.merged.slice(0, 12)} is not on ${branch} in ${dir}`,
    );
  }
  const subject = (
    await runUserGit(["log", "-1", "--format=%s", opts.merged], { cwd: dir })
  ).trim();
  const message =
    `Revert "${subject}"\n\nThis reverts commit ${opts.merged}, task ${opts.taskId} of mission ` +
    `${opts.missionId}.\n\nSquad-Mission: ${opts.missionId}\nSquad-Reverts-Task: ${opts.taskId}\n`;
  const env = await identityFallback(dir);

  const current = await runUserGit(["symbolic-ref", "-q", "HEAD"], { cwd: dir })
    .then((s) => s.trim())
    .catch(() => "");
  if (current === ref) {
    const dirty = dirtyPaths(
      await runUserGit(["status", "--porcelain=v1", "-z", "--untracked-files=no"], { cwd: dir }),
    );
    if (dirty.length > 0) {
      throw new BadInputError(
        `${branch} is checked out in ${dir} with uncommitted changes (${dirty.slice(0, 8).join(", ")}): ` +
          "commit or stash them (git stash), then revert again",
      );
    }
    const commit = await revertIn(dir, opts.merged, message, env);
    return { branch, commit, reverts: opts.merged, checkedOut: true, repoDir: dir };
  }

  const tmp = await mkdtemp(path.join(os.tmpdir(), "squad-revert-"));
  const worktree = path.join(tmp, "tree");
  try {
    await runUserGit(["worktree", "add", "--quiet", "--detach", worktree, tip], { cwd: dir });
    const commit = await revertIn(worktree, opts.merged, message, env);
    await runUserGit(["update-ref", "-m", `squad: revert task ${opts.taskId}`, ref, commit, tip], {
      cwd: dir,
    });
    return { branch, commit, reverts: opts.merged, checkedOut: false, repoDir: dir };
  } finally {
    await runUserGit(["worktree", "remove", "--force", worktree], { cwd: dir }).catch(
      () => undefined,
    );
    await rm(tmp, { recursive: true, force: true });
    await runUserGit(["worktree", "prune"], { cwd: dir }).catch(() => undefined);
  }
}

/** `git revert` of `commit` in `tree` with `message`; on a conflict, nothing stays and the files are named. */
async function revertIn(
  tree: string,
  commit: CommitId,
  message: string,
  env: NodeJS.ProcessEnv,
): Promise<CommitId> {
  try {
    await runUserGit(["revert", "--no-commit", commit], { cwd: tree, env });
  } catch (err) {
    if (!(err instanceof UserGitError)) throw err;
    const files = await runUserGit(["diff", "--name-only", "--diff-filter=U"], { cwd: tree })
      .then((s) => s.split("\n").filter(Boolean))
      .catch(() => []);
    await runUserGit(["revert", "--abort"], { cwd: tree }).catch(() => undefined);
    if (files.length > 0) {
      throw new BadInputError(
        `reverting ${commit.slice(0, 12)} conflicts with later changes in ${files.join(", ")}: ` +
          "nothing was changed; revert it by hand (git revert " +
          `${commit.slice(0, 12)}) and resolve the conflict`,
      );
    }
    throw err;
  }
  await runUserGit(["commit", "--quiet", "--no-verify", "-m", message], { cwd: tree, env });
  return (await runUserGit(["rev-parse", "HEAD"], { cwd: tree })).trim() as CommitId;
}

/** Your git identity when you have one; else Squad's, so the revert does not fail for want of one. */
async function identityFallback(dir: string): Promise<NodeJS.ProcessEnv> {
  const known = await runUserGit(["var", "GIT_COMMITTER_IDENT"], { cwd: dir }).then(
    () => true,
    () => false,
  );
  if (known) return {};
  return {
    GIT_AUTHOR_NAME: SQUAD_IDENTITY.name,
    GIT_AUTHOR_EMAIL: SQUAD_IDENTITY.email,
    GIT_COMMITTER_NAME: SQUAD_IDENTITY.name,
    GIT_COMMITTER_EMAIL: SQUAD_IDENTITY.email,
  };
}
