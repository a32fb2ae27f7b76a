/**
 * Delivery: a mission's head back to the person who asked for it, on the
 * submitter's machine (the only one with their repository).
 *
 * - deliverBranch: into the brief's workspace repository as a new branch
 *   `squad/<mission>`. Objects are fetched and one ref is created; the
 *   working tree, the index, HEAD and every other branch stay as they were.
 *   A branch of that name is never overwritten (the ref is created only if
 *   it does not exist, atomically).
 * - pushBranch: the same branch to a git remote, with the user's own git
 *   configuration and credential helpers. Nothing Squad prints or logs
 *   carries a URL's credentials.
 * - exportClone: a new repository in a new (or empty) directory, checked
 *   out at the head on branch `squad/<mission>`.
 *
 * All three read the head from the submitter's cache repository of the
 * mission (mission-repo.ts), where it must be present (MissionRepo.ensure).
 */
import { mkdir, readdir, realpath } from "node:fs/promises";
import path from "node:path";
import { BadInputError } from "../errors.ts";
import type { CommitId } from "../schema/index.ts";
import { runGit } from "./git-command.ts";
import { workspaceKind } from "./mission-base.ts";
import { redactCredentials, runUserGit, UserGitError } from "./user-git.ts";

/** What delivery needs of a MissionRepo. */
export interface DeliveryRepo {
  readonly gitDir: string;
  setRef(ref: string, commit: CommitId): Promise<void>;
}

const ZERO = "0000000000000000000000000000000000000000";

/** The ref the head is offered under in the cache repository, for the user's git to fetch. */
export const DELIVER_REF = "refs/squad/deliver";

export function deliveryBranch(missionId: string): string {
  return `squad/${missionId}`;
}

export interface Delivered {
  branch: string;
  commit: CommitId;
  /** The repository (or remote, credentials removed) it went to. */
  where: string;
  /** The branch was there already at exactly this commit: nothing was changed. */
  already: boolean;
}

/** The branch `squad/<mission>` in the user's repository `repoDir`, at `head`. */
export async function deliverBranch(opts: {
  repo: DeliveryRepo;
  missionId: string;
  head: CommitId;
  repoDir: string;
}): Promise<Delivered> {
  const dir = await gitWorkTree(opts.repoDir, opts.missionId);
  const branch = deliveryBranch(opts.missionId);
  const ref = `refs/heads/${branch}`;
  const existing = await branchTip(dir, ref);
  if (existing === opts.head) {
    return { branch, commit: opts.head, where: dir, already: true };
  }
  if (existing !== null) throw branchExists(branch, dir, existing, opts.missionId);
  await offer(opts.repo, opts.head);
  // Objects only: no ref, no FETCH_HEAD, no tags; then the one new ref, only if still absent.
  await runUserGit(
    ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", opts.repo.gitDir, DELIVER_REF],
    { cwd: dir },
  );
  try {
    await runUserGit(
      ["update-ref", "-m", `squad: mission ${opts.missionId}`, ref, opts.head, ZERO],
      { cwd: dir },
    );
  } catch (err) {
    const now = await branchTip(dir, ref);
    if (now !== null) throw branchExists(branch, dir, now, opts.missionId);
    throw err;
  }
  return { branch, commit: opts.head, where: dir, already: false };
}

/**
 * Pushes `head` as `squad/<mission>` to `remote` (a remote's name in
 * `fromDir`'s repository, or a URL). `fromDir`: the user's repository (its
 * remotes and config apply); null: the cache repository, with the user's
 * global git configuration (then `remote` must be a URL). The remote's
 * branch must not exist yet (--force-with-lease with an empty expectation).
 */
export async function pushBranch(opts: {
  repo: DeliveryRepo;
  missionId: string;
  head: CommitId;
  remote: string;
  fromDir: string | null;
}): Promise<Delivered> {
  const branch = deliveryBranch(opts.missionId);
  const ref = `refs/heads/${branch}`;
  const shown = redactCredentials(opts.remote);
  if (opts.remote.startsWith("-")) {
    throw new BadInputError(`--push ${shown}: a remote is a name or a URL, not an option`);
  }
  await offer(opts.repo, opts.head);
  if (opts.fromDir !== null) {
    // The objects (no ref) into the user's repository, so its own push can send them.
    await runUserGit(
      ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", opts.repo.gitDir, DELIVER_REF],
      { cwd: opts.fromDir },
    );
  }
  const where = opts.fromDir ?? opts.repo.gitDir;
  const gitDirArgs = opts.fromDir === null ? [`--git-dir=${opts.repo.gitDir}`] : [];
  const cwd = opts.fromDir ?? opts.repo.gitDir;
  try {
    // The remote's branch of that name: absent (push), at the head (done), else refuse.
    const listed = await runUserGit([...gitDirArgs, "ls-remote", opts.remote, ref], { cwd });
    const tip = /^([0-9a-f]{40})\s/.exec(listed)?.[1];
    if (tip === opts.head) return { branch, commit: opts.head, where: shown, already: true };
    if (tip !== undefined) {
      throw new UserGitError("exists", 1, `! [rejected] ${branch} already exists (stale info)`);
    }
    await runUserGit(
      [
        ...gitDirArgs,
        "push",
        "--quiet",
        `--force-with-lease=${ref}:`,
        opts.remote,
        `${opts.head}:${ref}`,
      ],
      { cwd },
    );
  } catch (err) {
    if (!(err instanceof UserGitError)) throw err;
    const text = err.stderr;
    if (/stale info|already exists|non-fast-forward|fetch first/i.test(text)) {
      throw new BadInputError(
        `branch ${branch} already exists on ${shown}: a delivery never overwrites a branch. ` +
          `Delete it there first (git push ${shown} --delete ${branch}), or push the head under ` +
          `another name yourself (swarm export ${opts.missionId} DIR, then git push)`,
      );
    }
    if (
      /does not appear to be a git repository|could not read from remote|no such remote/i.test(text)
    ) {
      throw new BadInputError(
        `cannot push to ${shown}: ${lastLine(text)} (a remote is the name of one of ${where}'s ` +
          "remotes, or a URL)",
      );
    }
    if (/authentication|could not read username|permission denied|403|401/i.test(text)) {
      throw new BadInputError(
        `the push to ${shown} was refused: ${lastLine(text)}. Squad uses your git's own ` +
          "credentials (credential.helper, an SSH key): check that `git push` to it works for you",
      );
    }
    throw new BadInputError(`pushing ${branch} to ${shown} failed: ${lastLine(text)}`, {
      cause: err,
    });
  }
  return { branch, commit: opts.head, where: shown, already: false };
}

/** A new repository in `dir` (absent or empty), on branch squad/<mission> at `head`. */
export async function exportClone(opts: {
  repo: DeliveryRepo;
  missionId: string;
  head: CommitId;
  dir: string;
}): Promise<Delivered> {
  const dir = path.resolve(opts.dir);
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    if (err.code === "ENOTDIR")
      throw new BadInputError(`export: ${dir} is a file, not a directory`);
    throw err;
  });
  if (entries !== null && entries.length > 0) {
    throw new BadInputError(
      `export: ${dir} is not empty; name a new directory (the export is a fresh repository)`,
    );
  }
  await mkdir(dir, { recursive: true });
  const branch = deliveryBranch(opts.missionId);
  await offer(opts.repo, opts.head);
  await runUserGit(["init", "--quiet", `--initial-branch=${branch}`], { cwd: dir });
  await runUserGit(
    ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", opts.repo.gitDir, DELIVER_REF],
    { cwd: dir },
  );
  await runUserGit(["update-ref", `refs/heads/${branch}`, opts.head, ZERO], { cwd: dir });
  await runUserGit(["reset", "--quiet", "--hard", "HEAD"], { cwd: dir });
  return { branch, commit: opts.head, where: await realpath(dir), already: false };
}

/** The tip of `ref` in the user's repository, or null when there is no such branch. */
export async function branchTip(dir: string, ref: string): Promise<CommitId | null> {
  const out = await runUserGit(["rev-parse", "--verify", "-q", `${ref}^{commit}`], {
    cwd: dir,
  }).catch(() => "");
  const sha = out.trim();
  return /^[0-9a-f]{40}$/.test(sha) ? (sha as CommitId) : null;
}

/** The directory as a git working tree's top level, or a BadInputError saying what to do. */
async function gitWorkTree(repoDir: string, missionId: string): Promise<string> {
  const dir = await realpath(repoDir).catch(() => null);
  if (dir === null) {
    throw new BadInputError(
      `the mission's workspace ${repoDir} is gone: write the result elsewhere with ` +
        `swarm export ${missionId} DIR`,
    );
  }
  const kind = await workspaceKind(dir);
  if (kind.kind !== "git") {
    throw new BadInputError(
      `${dir} is not a git repository, so there is no branch to deliver into: write the ` +
        `result as a new repository with swarm export ${missionId} DIR`,
    );
  }
  return dir;
}

function branchExists(branch: string, dir: string, tip: string, missionId: string): BadInputError {
  return new BadInputError(
    `branch ${branch} already exists in ${dir} (at ${tip.slice(0, 12)}) and a delivery never ` +
      `overwrites a branch: rename or delete it (git branch -m ${branch} ${branch}-old), then run ` +
      `swarm deliver ${missionId} again, or write the result elsewhere with swarm export ${missionId} DIR`,
  );
}

/** The head under DELIVER_REF in the cache repository, so a plain `git fetch` can take it. */
async function offer(repo: DeliveryRepo, head: CommitId): Promise<void> {
  await runGit(["cat-file", "-e", `${head}^{commit}`], { gitDir: repo.gitDir });
  await repo.setRef(DELIVER_REF, head);
}

/** git's reason: a rejected ref's line, else the first fatal/error that is not the summary. */
function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const pick =
    lines.find((l) => l.startsWith("! [")) ??
    lines.find((l) => /^(fatal|error):/.test(l) && !/failed to push some refs/.test(l)) ??
    lines.at(-1) ??
    "git gave no reason";
  return pick.replace(/^(fatal|error):\s*/, "");
}
