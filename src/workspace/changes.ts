/**
 * `result.changes` from git's own words: `git diff -z -M --numstat` (lines
 * added and deleted) and `git diff -z -M --name-status` (what happened to
 * each path), both between the attempt's base and its commit; or both at
 * once from one `git diff -z -M --raw --numstat` (parseDiffChanges). Pure.
 */
import type { Changes, FileChange } from "../schema/result.ts";
import type { CommitId } from "../schema/identifiers.ts";

interface Counts {
  additions: number;
  deletions: number;
  binary: boolean;
}

const STATUS: Record<string, FileChange["status"]> = {
  A: "added",
  M: "modified",
  D: "deleted",
  R: "renamed",
  T: "type_changed",
};

/** numstat -z: `a\td\tpath\0`, or for a rename `a\td\t\0old\0new\0`; `-\t-` for binary. */
export function parseNumstat(out: string): Map<string, Counts> {
  const fields = out.split("\0");
  const counts = new Map<string, Counts>();
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f === "") continue;
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(f);
    if (!m) throw new Error(`unexpected git diff --numstat output: ${JSON.stringify(f)}`);
    let path = m[3]!;
    if (path === "") {
      // A rename: old and new path follow as their own fields.
      i += 2;
      path = fields[i] ?? "";
    }
    const binary = m[1] === "-" && m[2] === "-";
    counts.set(path, {
      additions: binary ? 0 : Number(m[1]),
      deletions: binary ? 0 : Number(m[2]),
      binary,
    });
  }
  return counts;
}

type StatusEntry = { path: string; status: FileChange["status"]; from?: string };

/** name-status -z: `X\0path\0`, or `R<score>\0old\0new\0`. */
export function parseNameStatus(out: string): StatusEntry[] {
  const fields = out.split("\0");
  const entries: StatusEntry[] = [];
  for (let i = 0; i < fields.length; i++) {
    const code = fields[i]!;
    if (code === "") continue;
    const letter = code[0]!;
    if (letter === "R" || letter === "C") {
      const from = fields[++i];
      const path = fields[++i];
      if (!from || !path) throw new Error(`truncated git diff --name-status output at ${code}`);
      // A copy (-C) is reported as an addition of its new path.
      entries.push(letter === "R" ? { path, status: "renamed", from } : { path, status: "added" });
      continue;
    }
    const status = STATUS[letter];
    const path = fields[++i];
    if (!status || !path) {
      throw new Error(`unexpected git diff --name-status output: ${JSON.stringify(code)}`);
    }
    entries.push({ path, status });
  }
  return entries;
}

/**
 * `--raw --numstat -z` in one output: the raw records first
 * (`:<modes> <ids> X\0path\0`, or `... R<score>\0old\0new\0`), then the
 * numstat records. A raw record starts with `:`, a numstat one never does,
 * and each record's paths are consumed with it, so a path cannot be mistaken
 * for a record.
 */
export function splitRawNumstat(out: string): { entries: StatusEntry[]; numstat: string } {
  const fields = out.split("\0");
  const nameStatus: string[] = [];
  let i = 0;
  for (; i < fields.length; i++) {
    const f = fields[i]!;
    if (!f.startsWith(":")) break;
    const code = f.slice(f.lastIndexOf(" ") + 1);
    const letter = code[0];
    const paths = letter === "R" || letter === "C" ? 2 : 1;
    nameStatus.push(code, ...fields.slice(i + 1, i + 1 + paths));
    i += paths;
  }
  return {
    entries: parseNameStatus(nameStatus.join("\0")),
    numstat: fields.slice(i).join("\0"),
  };
}

/** The Changes object of `commit` against `base` from one `git diff -z -M --raw --numstat`. */
export function parseDiffChanges(base: CommitId, commit: CommitId, out: string): Changes {
  const { entries, numstat } = splitRawNumstat(out);
  return changesOf(base, commit, entries, parseNumstat(numstat));
}

/** The Changes object of `commit` against `base`, files sorted by path. */
export function parseChanges(
  base: CommitId,
  commit: CommitId,
  numstat: string,
  nameStatus: string,
): Changes {
  return changesOf(base, commit, parseNameStatus(nameStatus), parseNumstat(numstat));
}

function changesOf(
  base: CommitId,
  commit: CommitId,
  entries: StatusEntry[],
  counts: Map<string, Counts>,
): Changes {
  const files: FileChange[] = entries.map((e) => {
    const c = counts.get(e.path) ?? { additions: 0, deletions: 0, binary: false };
    const file: FileChange = {
      path: e.path,
      status: e.status,
      additions: c.additions,
      deletions: c.deletions,
    };
    if (e.from !== undefined) file.from = e.from;
    if (c.binary) file.binary = true;
    return file;
  });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    base,
    commit,
    files,
    additions: files.reduce((n, f) => n + f.additions, 0),
    deletions: files.reduce((n, f) => n + f.deletions, 0),
  };
}
