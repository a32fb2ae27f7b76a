/**
 * The argv of one confined command, outermost first (pure):
 *
 *   [cgroup placement] [prefix] [prlimit ...] [setpriv ...] command
 *
 * - the placement (cgroup.ts) runs first, as the worker: the pid it writes
 *   is the one that becomes the command, so everything after is counted;
 * - `prefix` (e.g. `ip netns exec <ns>`, from the network module) runs as
 *   the worker too, inside the cgroup: it may need root. It comes after the
 *   placement because `ip netns exec` remounts /sys, where the cgroup files
 *   live, in the namespace it creates;
 * - prlimit sets hard limits while the worker may still set them;
 * - setpriv drops to the sandbox user, for good (nothing after can raise
 *   the limits or regain root);
 * - the command: bwrap and its arguments, or `/bin/bash -c` for none.
 */
import { placementArgs } from "./cgroup.ts";

export interface CommandParts {
  /** cgroup.procs files to put the command in; absent: no cgroup. */
  cgroupProcs?: string[];
  prefix?: string[];
  rlimits?: string[];
  drop?: string[];
  command: string[];
}

export function confinedArgv(parts: CommandParts): string[] {
  const rest = [
    ...(parts.prefix ?? []),
    ...(parts.rlimits ?? []),
    ...(parts.drop ?? []),
    ...parts.command,
  ];
  return parts.cgroupProcs?.length ? placementArgs(parts.cgroupProcs, rest) : rest;
}

/**
 * What runs inside bwrap: the command under `bash -c`, then, from its parent
 * shell, the size of /tmp reported on fd 4 (the tmpfs is gone once the
 * sandbox ends, and a full /tmp is a limit to name). The command itself does
 * not get fd 4.
 */
export function innerCommand(script: string): string[] {
  return [
    "/bin/sh",
    "-c",
    '/bin/bash -c "$1" 4>&-; rc=$?; stat -f -c "tmp %b %f %S" /tmp 2>/dev/null >&4; exit $rc',
    "squad-sh",
    script,
  ];
}

/** The /tmp report of innerCommand: bytes total and free, or null (pure). */
export function parseTmpReport(text: string): { total: number; free: number } | null {
  const m = /tmp (\d+) (\d+) (\d+)\s*$/.exec(text);
  if (!m) return null;
  const bsize = Number(m[3]);
  return { total: Number(m[1]) * bsize, free: Number(m[2]) * bsize };
}
