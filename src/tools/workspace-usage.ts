/**
 * How much disk a task's workspace takes, and whether anything in it is not
 * owned by the sandbox user (then the command could not change it). Measured
 * without following symlinks, by blocks allocated (what fills the disk; a
 * sparse file counts what it really holds).
 */
import { spawn } from "node:child_process";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { SandboxUser } from "./sandbox-user.ts";

export interface WorkspaceUsage {
  bytes: number;
  files: number;
  /** The largest regular file's size. */
  largest: number;
  /** Some entry is owned by another uid than `owner` (when one was given). */
  foreign: boolean;
  /** Only the top directory itself is (a workspace the worker just created). */
  onlyTopForeign: boolean;
}

/** Walks `dir` (one directory's entries at a time, in parallel; never blocks the event loop). */
export async function workspaceUsage(dir: string, owner?: number): Promise<WorkspaceUsage> {
  const u: WorkspaceUsage = {
    bytes: 0,
    files: 0,
    largest: 0,
    foreign: false,
    onlyTopForeign: false,
  };
  let foreignBelow = false;
  const visit = async (p: string): Promise<void> => {
    const s = await lstat(p).catch(() => null);
    if (!s) return; // removed while we walked
    u.bytes += s.blocks * 512;
    u.files++;
    if (owner !== undefined && s.uid !== owner) {
      u.foreign = true;
      if (p !== dir) foreignBelow = true;
    }
    if (s.isFile()) u.largest = Math.max(u.largest, s.size);
    if (!s.isDirectory()) return;
    const names = await readdir(p).catch(() => [] as string[]);
    // Bounded fan-out: a directory of 100k entries must not open 100k requests at once.
    for (let i = 0; i < names.length; i += 64) {
      await Promise.all(names.slice(i, i + 64).map((n) => visit(path.join(p, n))));
    }
  };
  await visit(dir);
  u.onlyTopForeign = u.foreign && !foreignBelow;
  return u;
}

/**
 * Hands the whole workspace to the sandbox user (`chown -R -h`): commands
 * run as that uid and must be able to change what the submitter copied in or
 * the worker wrote as root. GNU chown walks with fts, by file descriptor and
 * without following symlinks, so a concurrent symlink swap inside the
 * workspace cannot turn it onto a file outside.
 */
export function chownWorkspace(dir: string, user: SandboxUser): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("chown", ["-R", "-P", "-h", `${user.uid}:${user.gid}`, "--", dir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < 4096) err += b.toString();
    });
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`chown of ${dir} failed: ${err.trim() || `exit ${code}`}`)),
    );
  });
}
