/**
 * What a task may leave in its checkout for a commit. Refused (the attempt
 * fails, and nothing of the checkout is committed): a `.git` anywhere (a
 * nested repository, a submodule's gitlink, a gitfile), a symlink whose
 * target leaves the checkout, a file over the per-file limit, and what git
 * cannot store (FIFOs, sockets, devices). The decision is pure
 * (`judgeEntry`); `checkTree` walks the directory without following links.
 */
import { lstat, readdir, readlink } from "node:fs/promises";
import path from "node:path";

export type EntryKind = "file" | "dir" | "symlink" | "other";

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

/** Problems found, at most `maxProblems` (default 20), in path order of the walk. */
export async function checkTree(
  dir: string,
  limits: { maxFileBytes: number; maxProblems?: number },
): Promise<TreeProblem[]> {
  const problems: TreeProblem[] = [];
  const max = limits.maxProblems ?? 20;
  const judge = { maxFileBytes: limits.maxFileBytes, checkoutDir: path.resolve(dir) };
  const walk = async (absDir: string, relDir: string): Promise<void> => {
    const names = (await readdir(absDir)).sort();
    for (const name of names) {
      if (problems.length >= max) return;
      const abs = path.join(absDir, name);
      const rel = relDir ? `${relDir}/${name}` : name;
      const st = await lstat(abs).catch(() => null);
      if (!st) continue;
      const kind: EntryKind = st.isSymbolicLink()
        ? "symlink"
        : st.isDirectory()
          ? "dir"
          : st.isFile()
            ? "file"
            : "other";
      const entry: TreeEntry = { rel, kind, size: st.size };
      if (kind === "symlink") entry.target = await readlink(abs).catch(() => "");
      const problem = judgeEntry(entry, judge);
      if (problem) {
        problems.push(problem);
        continue;
      }
      if (kind === "dir") await walk(abs, rel);
    }
  };
  await walk(path.resolve(dir), "");
  return problems;
}

/** One message for the result: the first problems, and how many more. */
export function describeProblems(problems: readonly TreeProblem[]): string {
  const shown = problems.slice(0, 5).map((p) => `${p.rel}: ${p.why}`);
  const more = problems.length > 5 ? `; and ${problems.length - 5} more` : "";
  return `the checkout holds what cannot be committed: ${shown.join("; ")}${more}`;
}
