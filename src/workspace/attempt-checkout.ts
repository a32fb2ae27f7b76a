/**
 * A task attempt's checkout: a plain directory (no `.git` inside) at the
 * attempt's base, worked on by git with `--git-dir=<cache repo>
 * --work-tree=<dir>` and an index file of its own in the cache repository,
 * so the task never sees or edits git metadata. A slot's directory is
 * reused from attempt to attempt (creating a worktree each time is slow).
 *
 * What the last attempt of the slot proved decides how the next one starts
 * (`KnownCheckout`, kept by the caller between attempts):
 * - the directory is still exactly the new base (its end-of-attempt walk
 *   matched the walk before, or git found it equal and it holds nothing but
 *   the index's files): nothing to do, no git process;
 * - it holds exactly the index's files (some commit's tree): a one-tree
 *   `read-tree --reset -u <base>` rewrites only what differs;
 * - anything else, or nothing known (a new process, a crash, an attempt
 *   that was not committed): `clean -ffdx` then `read-tree --reset -u`,
 *   or a fresh directory when git cannot reset it.
 * Every way ends with exactly the base, whatever the last attempt left (its
 * files, ignored files, a killed worker's half-written index).
 *
 * The commit: when the walk says nothing changed, none; else `add -A` (the
 * checkout's .gitignore respected), `write-tree`, `commit-tree -p base`,
 * then its bundle and changes (attempt-bundle.ts). It expects a directory
 * tree-check.ts passed: git never lists a `.git` entry, so one the task made
 * would survive a reset; a checkout that was not committed is removed on
 * release instead.
 */
import { lstat, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { publishAttemptCommit } from "./attempt-bundle.ts";
import type { MissionRepo } from "./mission-repo.ts";
import { walkTree, type TreeWalk } from "./tree-check.ts";
import {
  indexEntryCount,
  onlyIndexed,
  unchangedSince,
  type TreeSnapshot,
} from "./tree-snapshot.ts";
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

/** What an attempt's end proved about its slot's directory: how the next attempt may start. */
export interface KnownCheckout {
  /** The commit whose tree the directory holds (the base, or the attempt's own commit). */
  commit: CommitId;
  tree: string;
  /** Nothing but the index's files (and their directories): a one-tree read-tree is a full reset. */
  onlyIndexed: boolean;
  /** The walk at the attempt's end, when it may stand for the directory (onlyIndexed). */
  snapshot: TreeSnapshot | null;
  /** The index file as git left it (a different one: nothing of this holds). */
  index: FileIdentity;
}

interface FileIdentity {
  ino: number;
  size: number;
  ctimeMs: number;
}

export interface Checkout {
  readonly dir: string;
  readonly base: CommitId;
  /** Walk the directory: what tree-check.ts refuses, and its snapshot for commitAttempt. */
  inspect(limits: { maxFileBytes: number; maxProblems?: number }): Promise<TreeWalk>;
  /**
   * The attempt's changes as one commit on base, published; null when it
   * changed nothing. With the walk of inspect(), a checkout the walk proves
   * unchanged needs no git at all.
   */
  commitAttempt(req: CommitRequest, walk?: TreeWalk): Promise<Changes | null>;
  /** Keep the last commitAttempt's commit under `ref` (a failed attempt, for inspection). */
  keepFailed(ref: string): Promise<void>;
  /**
   * The attempt is over. After a commitAttempt the directory stays for the
   * next attempt (which resets it); otherwise (the attempt was refused,
   * aborted, or its commit failed) it is removed with its index, since it
   * may hold what a reset leaves alone (a `.git` of the task's own).
   */
  release(): Promise<void>;
  /** After release: what the slot's next prepareCheckout may rely on (null: reset in full). */
  known(): KnownCheckout | null;
}

export interface PrepareCheckoutOptions {
  repo: MissionRepo;
  /** `<SWARM_WORKSPACE>/<mission>/<instance>-<slot>`. */
  dir: string;
  base: CommitId;
  /** Unique among the users of this cache repository (`<instance>-<slot>`): names the index. */
  slot: string;
  /** What the slot's last attempt left (its checkout's known()); absent: reset in full. */
  known?: KnownCheckout | null;
  /** False: reset in full every time and never trust a walk (SWARM_CHECKOUT_REUSE=0). */
  reuse?: boolean;
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

/**
 * The file whose ctime dates a walk of the checkout: beside its index, out
 * of the sandbox's view; a walk trusts it only on the checkout's device.
 */
export function clockFileOf(indexFile: string): string {
  return `${indexFile}.clock`;
}

async function identity(file: string): Promise<FileIdentity | null> {
  const st = await lstat(file).catch(() => null);
  return st ? { ino: st.ino, size: st.size, ctimeMs: st.ctimeMs } : null;
}

function sameFile(a: FileIdentity | null, b: FileIdentity): boolean {
  return a !== null && a.ino === b.ino && a.size === b.size && a.ctimeMs === b.ctimeMs;
}

/** How a reused directory is brought to the base (see the file's comment). */
type Start = "as-is" | "switch" | "full";

/** The checkout of `base` in `dir` (made or reset), base fetched into the cache first. */
export async function prepareCheckout(opts: PrepareCheckoutOptions): Promise<Checkout> {
  const { repo, dir, base, slot } = opts;
  const reuse = opts.reuse ?? true;
  const indexFile = indexFileOf(repo, slot);
  const clock = clockFileOf(indexFile);
  await mkdir(path.dirname(indexFile), { recursive: true });
  // Only this slot uses this index: a lock file here is a killed worker's.
  await rm(`${indexFile}.lock`, { force: true });
  const git = { workTree: dir, indexFile };
  const reused = await lstat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const known = reuse && reused ? (opts.known ?? null) : null;
  let start: Start = "full";
  if (known && sameFile(await identity(indexFile), known.index)) {
    if (known.commit === base && known.snapshot) start = "as-is";
    else if (known.onlyIndexed) start = "switch";
  }

  /** read-tree of the base over an index that lists everything there is; false: reset in full. */
  const switchTo = async (): Promise<boolean> => {
    try {
      await repo.git(["read-tree", "--reset", "-u", base], git);
      return true;
    } catch {
      // Most often the base is not fetched yet (no process spent asking first).
      if (await repo.has(base)) return false;
    }
    await repo.ensure(base);
    await repo.git(["read-tree", "--reset", "-u", base], git);
    return true;
  };
  const resetInFull = async (): Promise<void> => {
    await repo.ensure(base);
    if (reused) {
      try {
        await repo.git(["clean", "-q", "-ffdx"], git);
        await repo.git(["read-tree", "--reset", "-u", base], git);
        return;
      } catch {
        // A checkout git can no longer reset (an index from another base's crash...): start afresh.
      }
    }
    await rm(dir, { recursive: true, force: true });
    await rm(indexFile, { force: true });
    await mkdir(dir, { recursive: true });
    await repo.git(["read-tree", "--reset", "-u", base], git);
  };
  if (start === "switch" && !(await switchTo().catch(() => false))) start = "full";
  if (start === "full") await resetInFull();

  // Asked once per checkout (not per commit); in flight while the task runs.
  const baseTree =
    start === "as-is" ? Promise.resolve(known!.tree) : repo.git(["rev-parse", `${base}^{tree}`]);
  baseTree.catch(() => undefined);
  /** The walk the directory must still match for "nothing changed" (only when it stands for the base). */
  const before = start === "as-is" ? known!.snapshot : null;
  let last: CommitId | null = null;
  /** commitAttempt went through: everything in the directory is in the index, nothing foreign. */
  let committed = false;
  let next: KnownCheckout | null = null;
  /** What this attempt's end proved, once git is done with the index. */
  const prove = async (
    commit: CommitId,
    tree: string,
    snapshot: TreeSnapshot | null,
    indexed: boolean,
  ): Promise<KnownCheckout | null> => {
    const index = await identity(indexFile);
    if (!reuse || !index) return null;
    return {
      commit,
      tree,
      onlyIndexed: indexed,
      snapshot: indexed ? snapshot : null,
      index,
    };
  };
  return {
    dir,
    base,
    inspect(limits) {
      return walkTree(dir, { ...limits, ...(reuse ? { clock } : {}) });
    },
    async commitAttempt(req, walk) {
      const snapshot = walk?.snapshot ?? null;
      if (before && snapshot && unchangedSince(before, snapshot)) {
        committed = true;
        next = { ...known!, snapshot };
        return null;
      }
      await repo.git(["add", "-A", "--", "."], git);
      const tree = await repo.git(["write-tree"], git);
      // add -A lists every file git does not ignore: as many as the walk saw means no other.
      const indexed = snapshot !== null && onlyIndexed(snapshot, indexEntryCount(indexFile));
      if (tree === (await baseTree)) {
        next = await prove(base, tree, snapshot, indexed);
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
      const [, changes, proved] = await Promise.all([
        publishAttemptCommit(repo, commit, base),
        repo.diffChanges(base, commit),
        prove(commit, tree, snapshot, indexed),
      ]);
      next = proved;
      committed = true;
      return changes;
    },
    async keepFailed(ref) {
      if (last) await repo.setRef(ref, last);
    },
    async release() {
      last = null;
      if (committed) return;
      next = null;
      await rm(dir, { recursive: true, force: true });
      await rm(indexFile, { force: true });
      await rm(clock, { force: true });
    },
    known: () => next,
  };
}
