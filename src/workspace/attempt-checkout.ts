/**
 * A task attempt's checkout: a plain directory (no `.git` inside) at the
 * attempt's base, worked on by git with `--git-dir=<cache repo>
 * --work-tree=<dir>` and an index file of its own in the cache repository,
 * so the task never sees or edits git metadata. A slot's directory is
 * reused from attempt to attempt (creating a worktree each time is slow):
 * `clean -ffdx` then `read-tree --reset -u <base>` leave exactly the base,
 * whatever the last attempt left (its files, ignored files, a killed
 * worker's half-written index). The commit is `add -A` (the checkout's
 * .gitignore respected), `write-tree`, `commit-tree -p base`, then its
 * bundle published. It expects a directory tree-check.ts passed: git
 * never lists a `.git` entry, so one the task made would survive a reset;
 * a checkout that was not committed is removed on release instead.
 */
import { lstat, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { MissionRepo } from "./mission-repo.ts";
import type { CommitId } from "../schema/identifiers.ts";
import type { Changes } from "../schema/result.ts";

export interface CommitRequest {
  /** `<agent>/<instance>` and `<agent>@squad.local`. */
  author: { name: string; email: string };
  /** The commit's subject (the task title). */
  title: string;
  /** In order: `Squad-Mission`, `Squad-Task`, `Squad-Attempt`, `Squad-Agent`. */
  trailers: Record<string, string>;
}

export interface Checkout {
  readonly dir: string;
  readonly base: CommitId;
  /** The attempt's changes as one commit on base, published; null when it changed nothing. */
  commitAttempt(req: CommitRequest): Promise<Changes | null>;
  /** Keep the last commitAttempt's commit under `ref` (a failed attempt, for inspection). */
  keepFailed(ref: string): Promise<void>;
  /**
   * The attempt is over. After a commitAttempt the directory stays for the
   * next attempt (which resets it); otherwise (the attempt was refused,
   * aborted, or its commit failed) it is removed with its index, since it
   * may hold what a reset leaves alone (a `.git` of the task's own).
   */
  release(): Promise<void>;
}

export interface PrepareCheckoutOptions {
  repo: MissionRepo;
  /** `<SWARM_WORKSPACE>/<mission>/<instance>-<slot>`. */
  dir: string;
  base: CommitId;
  /** Unique among the users of this cache repository (`<instance>-<slot>`): names the index. */
  slot: string;
}

/** One line, no control characters (a subject or a trailer value). */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return s.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
}

export function commitMessage(req: Pick<CommitRequest, "title" | "trailers">): string {
  const trailers = Object.entries(req.trailers).map(([k, v]) => `${k}: ${oneLine(v)}`);
  return `${oneLine(req.title) || "(untitled)"}\n\n${trailers.join("\n")}\n`;
}

export function indexFileOf(repo: MissionRepo, slot: string): string {
  return path.join(repo.gitDir, "squad-index", slot);
}

/** The checkout of `base` in `dir` (made or reset), base fetched into the cache first. */
export async function prepareCheckout(opts: PrepareCheckoutOptions): Promise<Checkout> {
  const { repo, dir, base, slot } = opts;
  await repo.ensure(base);
  const indexFile = indexFileOf(repo, slot);
  await mkdir(path.dirname(indexFile), { recursive: true });
  // Only this slot uses this index: a lock file here is a killed worker's.
  await rm(`${indexFile}.lock`, { force: true });
  const git = { workTree: dir, indexFile };
  const reused = await lstat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  let ready = false;
  if (reused) {
    try {
      await repo.git(["clean", "-q", "-ffdx"], git);
      await repo.git(["read-tree", "--reset", "-u", base], git);
      ready = true;
    } catch {
      // A checkout git can no longer reset (an index from another base's crash...): start afresh.
    }
  }
  if (!ready) {
    await rm(dir, { recursive: true, force: true });
    await rm(indexFile, { force: true });
    await mkdir(dir, { recursive: true });
    await repo.git(["read-tree", "--reset", "-u", base], git);
  }

  // Asked once per checkout (not per commit); in flight while the task runs.
  const baseTree = repo.git(["rev-parse", `${base}^{tree}`]);
  baseTree.catch(() => undefined);
  let last: CommitId | null = null;
  /** commitAttempt went through: everything in the directory is in the index, nothing foreign. */
  let committed = false;
  return {
    dir,
    base,
    async commitAttempt(req) {
      await repo.git(["add", "-A", "--", "."], git);
      const tree = await repo.git(["write-tree"], git);
      if (tree === (await baseTree)) {
        committed = true;
        return null;
      }
      const who = {
        GIT_AUTHOR_NAME: req.author.name,
        GIT_AUTHOR_EMAIL: req.author.email,
        GIT_COMMITTER_NAME: req.author.name,
        GIT_COMMITTER_EMAIL: req.author.email,
      };
      const commit = await repo.git(["commit-tree", tree, "-p", base], {
        input: commitMessage(req),
        env: who,
      });
      last = commit;
      const [, changes] = await Promise.all([
        repo.publish(commit, [base]),
        repo.diffChanges(base, commit),
      ]);
      committed = true;
      return changes;
    },
    async keepFailed(ref) {
      if (last) await repo.setRef(ref, last);
    },
    async release() {
      last = null;
      if (committed) return;
      await rm(dir, { recursive: true, force: true });
      await rm(indexFile, { force: true });
    },
  };
}
