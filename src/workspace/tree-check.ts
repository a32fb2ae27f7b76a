/**
 * What a task may leave in its checkout for a commit. Refused (the attempt
 * fails, and nothing of the checkout is committed): a `.git` anywhere (a
 * nested repository, a submodule's gitlink, a gitfile), a symlink whose
 * target leaves the checkout, a file over the per-file limit, and what git
 * cannot store (FIFOs, sockets, devices). The decision is pure
 * (`judgeEntry`); `walkTree` walks the directory without following links
 * and stamps what it saw (tree-snapshot.ts), in one pass.
 */
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { fsClock, kindOf, stampOf, type StampKind, type TreeSnapshot } from "./tree-snapshot.ts";

export type EntryKind = StampKind;

export interface TreeEntry {
  /** Relative to the checkout, `/`-separated. */
  rel: string;
  kind: EntryKind;
  size: number;
  /** A symlink's target as written. */
  target?: string;
}

export interface TreeProblem {
  rel: string;
  why: string;
}

/** Is this name git's own directory (any case: git refuses `.GIT` too)? */
function isGitName(name: string): boolean {
  return name.toLowerCase() === ".git";
}

/** Does a link at `rel` with `target` resolve inside the checkout? (Pure; `rel` is `/`-separated.) */
export function linkStaysInside(rel: string, target: string, checkoutDir: string): boolean {
  if (target === "") return false;
  if (path.posix.isAbsolute(target)) {
    // An absolute target is a host path: inside only when it points into this checkout.
    const resolved = path.posix.normalize(target);
    const root = path.posix.normalize(checkoutDir);
    return resolved === root || resolved.startsWith(`${root}/`);
  }
  // Walk the names from the link's own directory; one `..` above the checkout's root leaves it.
  const stack = rel.split("/").slice(0, -1);
  for (const name of target.split("/")) {
    if (name === "" || name === ".") continue;
    if (name === "..") {
      if (stack.length === 0) return false;
      stack.pop();
    } else stack.push(name);
  }
  return true;
}

/** The refusal for one entry, or null (pure). */
export function judgeEntry(
  e: TreeEntry,
  limits: { maxFileBytes: number; checkoutDir: string },
): TreeProblem | null {
  const name = e.rel.split("/").pop() ?? e.rel;
  if (isGitName(name)) {
    return {
      rel: e.rel,
      why: "a nested git repository, submodule or .git file (Squad keeps the git metadata; commit nothing of your own)",
    };
  }
  if (e.kind === "symlink" && !linkStaysInside(e.rel, e.target ?? "", limits.checkoutDir)) {
    return {
      rel: e.rel,
      why: `a symlink pointing out of the checkout (to ${JSON.stringify(e.target)})`,
    };
  }
  // At the limit counts: RLIMIT_FSIZE stops a write there, so such a file is a cut-off one.
  if (e.kind === "file" && e.size >= limits.maxFileBytes) {
    return {
      rel: e.rel,
      why: `a file of ${e.size} bytes, at or over the per-file limit of ${limits.maxFileBytes} bytes (the roster's limits.file_mb)`,
    };
  }
  if (e.kind === "other") {
    return {
      rel: e.rel,
      why: "not a regular file, directory or symlink (a FIFO, socket or device)",
    };
  }
  return null;
}

export interface TreeWalk {
  problems: TreeProblem[];
  /** The checkout as walked (tree-snapshot.ts): what the next attempt's end compares with. */
  snapshot: TreeSnapshot;
}

/** Entries stamped between two turns of the event loop: a big checkout never blocks it long. */
const ENTRIES_PER_TURN = 256;

const latin1 = (b: Buffer) => b.toString("latin1");
/** A path's bytes (latin1) as text for a message. */
const readable = (bytes: string) => Buffer.from(bytes, "latin1").toString("utf8");

/**
 * Problems found, at most `maxProblems` (default 20), in path order, and
 * the snapshot of the checkout. Names are read as bytes, so an entry whose
 * name is not UTF-8 is judged like any other. `clock` (a file on the
 * checkout's file system, outside it) is touched first to date the snapshot;
 * without it the snapshot is never trusted.
 */
export async function walkTree(
  dir: string,
  limits: { maxFileBytes: number; maxProblems?: number; clock?: string },
): Promise<TreeWalk> {
  const problems: TreeProblem[] = [];
  const max = limits.maxProblems ?? 20;
  const root = path.resolve(dir);
  const judge = { maxFileBytes: limits.maxFileBytes, checkoutDir: latin1(Buffer.from(root)) };
  const clock = limits.clock ? fsClock(limits.clock) : null;
  const topStat = lstatSync(root);
  const snapshot: TreeSnapshot = {
    takenAt: clock?.nowMs ?? Number.NEGATIVE_INFINITY,
    entries: new Map(),
    top: stampOf(topStat),
    complete: clock !== null && clock.dev === topStat.dev,
  };
  let sinceTurn = 0;
  const walk = async (absDir: Buffer, relDir: string): Promise<void> => {
    const names = readdirSync(absDir, { encoding: "buffer" }).sort(Buffer.compare);
    for (const nameBytes of names) {
      if (problems.length >= max) {
        snapshot.complete = false;
        return;
      }
      if (++sinceTurn >= ENTRIES_PER_TURN) {
        sinceTurn = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const abs = Buffer.concat([absDir, SLASH, nameBytes]);
      const name = latin1(nameBytes);
      const rel = relDir ? `${relDir}/${name}` : name;
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        snapshot.complete = false; // removed while we walked
        continue;
      }
      const kind = kindOf(st);
      const entry: TreeEntry = { rel, kind, size: st.size };
      if (kind === "symlink") entry.target = readTarget(abs);
      snapshot.entries.set(rel, stampOf(st, entry.target));
      const problem = judgeEntry(entry, judge);
      if (problem) {
        // Judged on the bytes; told in text (the same verdict: `/` and `.` are never part of a UTF-8 sequence).
        const told = { ...entry, rel: readable(rel) };
        if (entry.target !== undefined) told.target = readable(entry.target);
        problems.push(
          judgeEntry(told, { maxFileBytes: limits.maxFileBytes, checkoutDir: root }) ?? {
            rel: told.rel,
            why: problem.why,
          },
        );
        continue;
      }
      if (kind === "dir") await walk(abs, rel);
    }
  };
  await walk(Buffer.from(root), "");
  return { problems, snapshot };
}

const SLASH = Buffer.from("/");

function readTarget(abs: Buffer): string {
  try {
    return latin1(readlinkSync(abs, { encoding: "buffer" }));
  } catch {
    return "";
  }
}

/** Problems found, at most `maxProblems` (default 20), in path order of the walk. */
export async function checkTree(
  dir: string,
  limits: { maxFileBytes: number; maxProblems?: number },
): Promise<TreeProblem[]> {
  return (await walkTree(dir, limits)).problems;
}

/** One message for the result: the first problems, and how many more. */
export function describeProblems(problems: readonly TreeProblem[]): string {
  const shown = problems.slice(0, 5).map((p) => `${p.rel}: ${p.why}`);
  const more = problems.length > 5 ? `; and ${problems.length - 5} more` : "";
  return `the checkout holds what cannot be committed: ${shown.join("; ")}${more}`;
}
