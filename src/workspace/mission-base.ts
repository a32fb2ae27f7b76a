/**
 * The submitter's side of a mission repository: the base commit every task
 * of the mission starts from, made from the brief's `workspace:` on the
 * submitter's machine (the only one that has it) and uploaded as a bundle.
 *
 *   a git repository (the directory is its working tree's top level)
 *        → its HEAD, with history; refused when it has uncommitted changes
 *          or untracked files that are not ignored (nothing is dropped
 *          silently), when it is bare, shallow, or has no commit yet
 *   a plain directory (also one inside some other repository's tree)
 *        → a first commit of its files (node_modules and .git left out)
 *   none → an empty first commit
 */
import { cp, mkdtemp, realpath, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BadInputError } from "../errors.ts";
import type { CommitId, MissionWorkspace } from "../schema/index.ts";
import { runGit } from "./git-command.ts";
import { runUserGit, UserGitError } from "./user-git.ts";

/** What makeMissionBase needs of a MissionRepo (mission-repo.ts). */
export interface BaseRepo {
  readonly gitDir: string;
  setRef(ref: string, commit: CommitId): Promise<void>;
  publish(commit: CommitId, since: CommitId[]): Promise<unknown>;
}

/** The ref the base is kept under in the submitter's cache repository. */
export const BASE_REF = "refs/squad/base";

/** Author and committer of the commits Squad makes itself (a directory's first commit, the empty one). */
export const SQUAD_IDENTITY = { name: "squad", email: "squad@squad.local" } as const;

/** Paths of a plain directory that never go into its first commit. */
const LEFT_OUT = /(^|\/)(node_modules|\.git)(\/|$)/;

/** How many dirty paths an error names before "and N more". */
const SHOWN_PATHS = 8;

/** What kind of directory a workspace is, as far as git can tell. */
export type WorkspaceKind =
  { kind: "git"; top: string } | { kind: "bare" } | { kind: "git-dir" } | { kind: "directory" };

/** A workspace directory that may become a mission base. */
export type CheckedWorkspace =
  | { kind: "git"; dir: string; head: CommitId; branch: string | null }
  | { kind: "directory"; dir: string };

/**
 * Checks a workspace directory without changing anything (before a launcher
 * starts anything): BadInputError for a missing path, a file, a bare
 * repository, a .git directory, a repository without commits or with
 * uncommitted changes.
 */
export async function checkWorkspace(workspaceDir: string): Promise<CheckedWorkspace> {
  const dir = await realDirectory(workspaceDir);
  const kind = await workspaceKind(dir);
  if (kind.kind === "bare") {
    throw new BadInputError(
      `workspace ${dir} is a bare git repository: a mission needs a working tree to start from; ` +
        `name a clone of it instead (git clone ${dir} <dir>)`,
    );
  }
  if (kind.kind === "git-dir") {
    throw new BadInputError(
      `workspace ${dir} is inside a repository's .git directory: name the repository's working tree`,
    );
  }
  if (kind.kind === "directory") return { kind: "directory", dir };
  return { kind: "git", dir, ...(await cleanHead(dir)) };
}

/** Makes the base, uploads its bundle, keeps it under BASE_REF; returns the workspace record. */
export async function makeMissionBase(
  workspaceDir: string | null,
  repo: BaseRepo,
): Promise<MissionWorkspace> {
  let workspace: MissionWorkspace;
  if (workspaceDir === null) {
    workspace = { base: await emptyCommit(repo), source: "empty", path: null };
  } else {
    const checked = await checkWorkspace(workspaceDir);
    if (checked.kind === "git") {
      // The history comes along: a local fetch of HEAD (the user's repository is only read).
      await runGit(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", checked.dir, checked.head],
        { gitDir: repo.gitDir },
      );
      workspace = { base: checked.head, source: "git", path: checked.dir, branch: checked.branch };
    } else {
      const base = await directoryCommit(checked.dir, repo);
      workspace = { base, source: "directory", path: checked.dir };
    }
  }
  await repo.setRef(BASE_REF, workspace.base);
  await repo.publish(workspace.base, []);
  return workspace;
}

/** The real path of a directory; BadInputError when it is missing or not a directory. */
async function realDirectory(p: string): Promise<string> {
  const real = await realpath(p).catch(() => null);
  const info = real ? await stat(real).catch(() => null) : null;
  if (!real) throw new BadInputError(`workspace ${p} does not exist`);
  if (!info?.isDirectory()) throw new BadInputError(`workspace ${p} is not a directory`);
  return real;
}

/**
 * A git working tree's top level, a bare repository, a .git directory, or
 * anything else (a directory outside any repository, or below the top of
 * one: a subdirectory is taken as plain files).
 */
export async function workspaceKind(dir: string): Promise<WorkspaceKind> {
  let out: string;
  try {
    out = await runUserGit(
      ["rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--show-toplevel"],
      { cwd: dir },
    );
  } catch (err) {
    // Outside any repository, rev-parse --show-toplevel fails: plain files.
    if (err instanceof UserGitError && /not a git repository/i.test(err.stderr)) {
      return { kind: "directory" };
    }
    // In a bare repository --show-toplevel fails too ("must be run in a work tree").
    if (err instanceof UserGitError && /must be run in a work tree/i.test(err.stderr)) {
      const bare = await runUserGit(["rev-parse", "--is-bare-repository"], { cwd: dir }).catch(
        () => "",
      );
      return bare.trim() === "true" ? { kind: "bare" } : { kind: "git-dir" };
    }
    throw gitProblem(dir, err);
  }
  const [bare, inGitDir, top] = out.trim().split("\n");
  if (bare === "true") return { kind: "bare" };
  if (inGitDir === "true") return { kind: "git-dir" };
  const realTop = top ? await realpath(top).catch(() => top) : null;
  return realTop === dir ? { kind: "git", top: realTop } : { kind: "directory" };
}

/** HEAD of a repository that has no uncommitted changes, and its branch. */
async function cleanHead(dir: string): Promise<{ head: CommitId; branch: string | null }> {
  const status = await runUserGit(["status", "--porcelain=v1", "-z", "--untracked-files=all"], {
    cwd: dir,
  }).catch((err: unknown) => {
    throw gitProblem(dir, err);
  });
  const dirty = dirtyPaths(status);
  if (dirty.length > 0) {
    const shown = dirty.slice(0, SHOWN_PATHS).join(", ");
    const more = dirty.length > SHOWN_PATHS ? ` and ${dirty.length - SHOWN_PATHS} more` : "";
    throw new BadInputError(
      `workspace ${dir} has uncommitted changes (${shown}${more}): a mission starts from the ` +
        "repository's HEAD and would leave them out. Commit them (git add -A && git commit) or " +
        "stash them (git stash -u), then submit again",
    );
  }
  const head = await runUserGit(["rev-parse", "--verify", "-q", "HEAD^{commit}"], {
    cwd: dir,
  }).catch(() => "");
  if (!/^[0-9a-f]{40}$/.test(head.trim())) {
    throw new BadInputError(
      `workspace ${dir} is a git repository without any commit: commit its files first ` +
        "(git add -A && git commit -m 'Initial commit')",
    );
  }
  const shallow = await runUserGit(["rev-parse", "--is-shallow-repository"], { cwd: dir }).catch(
    () => "false",
  );
  if (shallow.trim() === "true") {
    throw new BadInputError(
      `workspace ${dir} is a shallow clone: a mission needs the history it starts from; ` +
        "fetch the rest first (git fetch --unshallow)",
    );
  }
  const branch = await runUserGit(["symbolic-ref", "--short", "-q", "HEAD"], { cwd: dir })
    .then((s) => s.trim() || null)
    .catch(() => null);
  return { head: head.trim() as CommitId, branch };
}

/**
 * Paths `git status --porcelain=v1 -z` lists (renames name both; their
 * second path is its own NUL-separated entry, skipped).
 */
export function dirtyPaths(porcelainZ: string): string[] {
  const entries = porcelainZ.split("\0");
  const paths: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.length < 4) continue;
    paths.push(e.slice(3));
    if (e[0] === "R" || e[0] === "C" || e[1] === "R" || e[1] === "C") i++;
  }
  return paths;
}

/** A first commit of a plain directory's files (all of them but node_modules and .git). */
async function directoryCommit(dir: string, repo: BaseRepo): Promise<CommitId> {
  // A copy, so nested repositories are plain files and no ignore file decides what is left out.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "squad-base-"));
  try {
    const files = path.join(tmp, "files");
    await cp(dir, files, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => !LEFT_OUT.test(path.relative(dir, src)),
    });
    const indexFile = path.join(tmp, "index");
    await runGit(["add", "-A", "--force", "."], {
      gitDir: repo.gitDir,
      workTree: files,
      indexFile,
      cwd: files,
    });
    const tree = (await runGit(["write-tree"], { gitDir: repo.gitDir, indexFile })).trim();
    return await commitTree(repo, tree, `Mission base: the files of ${path.basename(dir)}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function emptyCommit(repo: BaseRepo): Promise<CommitId> {
  const tree = (await runGit(["mktree"], { gitDir: repo.gitDir, input: "" })).trim();
  return commitTree(repo, tree, "Mission base: an empty workspace");
}

async function commitTree(repo: BaseRepo, tree: string, message: string): Promise<CommitId> {
  const out = await runGit(["commit-tree", tree, "-m", message], {
    gitDir: repo.gitDir,
    env: identityEnv(),
  });
  return out.trim() as CommitId;
}

function identityEnv(): Record<string, string> {
  return {
    GIT_AUTHOR_NAME: SQUAD_IDENTITY.name,
    GIT_AUTHOR_EMAIL: SQUAD_IDENTITY.email,
    GIT_COMMITTER_NAME: SQUAD_IDENTITY.name,
    GIT_COMMITTER_EMAIL: SQUAD_IDENTITY.email,
  };
}

function gitProblem(dir: string, err: unknown): Error {
  if (err instanceof UserGitError) {
    return new BadInputError(
      `workspace ${dir}: git could not read it: ${err.stderr || err.message}`,
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}
