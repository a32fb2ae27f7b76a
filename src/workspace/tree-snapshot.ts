/**
 * What a checkout looked like when its attempt ended, by `lstat` of every
 * entry: enough to tell, at the next attempt's end, that nothing in it
 * changed without asking git (no process at all). A change always moves an
 * entry's ctime, which no unprivileged process can set; the one blind spot
 * is a change within the same tick of the file system's clock as the entry's
 * last one, so an entry whose ctime is not older than the clock read just
 * before the walk (`takenAt`, the ctime of a file touched on the same file
 * system) is not trusted: git's own "racily clean" rule. The decisions are
 * pure; `fsClock` and `indexEntryCount` read the disk.
 */
import {
  closeSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
  utimesSync,
  writeFileSync,
} from "node:fs";

export type StampKind = "file" | "dir" | "symlink" | "other";

export interface Stamp {
  kind: StampKind;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  ino: number;
  nlink: number;
  mtimeMs: number;
  ctimeMs: number;
  /** A symlink's target, bytes as latin1. */
  target?: string;
}

export interface TreeSnapshot {
  /** The file system's clock just before the walk (ms, the ctime of a touched file). */
  takenAt: number;
  /** Every entry below the checkout, keyed by its `/`-separated path (bytes as latin1). */
  entries: Map<string, Stamp>;
  /** The checkout directory itself (only its identity and permissions are compared). */
  top: Stamp;
  /** Every entry was stamped (none vanished, the walk was not cut short, the clock is on the same device). */
  complete: boolean;
}

export function kindOf(st: Stats): StampKind {
  return st.isSymbolicLink()
    ? "symlink"
    : st.isDirectory()
      ? "dir"
      : st.isFile()
        ? "file"
        : "other";
}

export function stampOf(st: Stats, target?: string): Stamp {
  const s: Stamp = {
    kind: kindOf(st),
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    ino: st.ino,
    nlink: st.nlink,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
  if (target !== undefined) s.target = target;
  return s;
}

/** A directory's times move with every entry made or removed in it: its names are compared instead. */
function sameStamp(a: Stamp, b: Stamp): boolean {
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.ino !== b.ino) return false;
  if (a.kind === "dir") return true;
  return (
    a.size === b.size &&
    a.nlink === b.nlink &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.target === b.target
  );
}

/** Is `now` provably the same tree as `before` (same entries, none changed since)? Pure. */
export function unchangedSince(before: TreeSnapshot, now: TreeSnapshot): boolean {
  if (!before.complete || !now.complete) return false;
  if (before.entries.size !== now.entries.size) return false;
  if (!sameStamp(before.top, now.top)) return false;
  for (const [rel, b] of before.entries) {
    const n = now.entries.get(rel);
    if (!n || !sameStamp(b, n)) return false;
    // Changed in the clock tick of the earlier walk: a later change could have kept its ctime.
    if (b.kind !== "dir" && b.ctimeMs >= before.takenAt) return false;
  }
  return true;
}

/**
 * Does the checkout hold only what the index lists (after `add -A`, which
 * lists every file git does not ignore, all present)? Then a one-tree
 * `read-tree --reset -u` leaves exactly the next base, no `clean` needed.
 * False when an ignored file, or a directory with no file below it (git
 * tracks none), is there. Pure.
 */
export function onlyIndexed(snapshot: TreeSnapshot, indexEntries: number | null): boolean {
  if (!snapshot.complete || indexEntries === null) return false;
  let files = 0;
  const holding = new Set<string>();
  for (const [rel, s] of snapshot.entries) {
    if (s.kind === "dir") continue;
    files++;
    for (let i = rel.lastIndexOf("/"); i > 0; i = rel.lastIndexOf("/", i - 1)) {
      const parent = rel.slice(0, i);
      if (holding.has(parent)) break;
      holding.add(parent);
    }
  }
  if (files !== indexEntries) return false;
  for (const [rel, s] of snapshot.entries) if (s.kind === "dir" && !holding.has(rel)) return false;
  return true;
}

/** The file system's clock now, as the ctime of `file` (touched, made if missing), and its device. */
export function fsClock(file: string): { nowMs: number; dev: number } {
  const now = new Date();
  try {
    utimesSync(file, now, now);
  } catch {
    writeFileSync(file, "");
  }
  const st = lstatSync(file);
  return { nowMs: st.ctimeMs, dev: st.dev };
}

/** The entry count of a git index file (header `DIRC`, version 2-4, count), or null. */
export function indexEntryCount(file: string): number | null {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const head = Buffer.alloc(12);
    if (readSync(fd, head, 0, 12, 0) !== 12) return null;
    if (head.toString("latin1", 0, 4) !== "DIRC") return null;
    const version = head.readUInt32BE(4);
    if (version < 2 || version > 4) return null;
    return head.readUInt32BE(8);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
