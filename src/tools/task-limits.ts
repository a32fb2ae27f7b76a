/**
 * Resource limits of one task's commands: the roster's `limits` (per agent),
 * over the defaults. Each is enforced where the kernel can do it best
 * (docs/security.md, "Limits"):
 *
 * - processes, memory_mb: the command's own cgroup (pids.max, memory.max /
 *   memory.limit_in_bytes); without cgroups, processes falls back to
 *   RLIMIT_NPROC (per uid, see `rlimitArgs`) and memory is not limited;
 * - file_mb: RLIMIT_FSIZE (hard), per file written;
 * - cpu_s: RLIMIT_CPU (hard) per process, and the cgroup's total CPU time;
 * - workspace_mb: the workspace measured while the command runs and after it;
 * - tmp_mb: the size of the sandbox's private /tmp (a tmpfs; bwrap only).
 */
import { z } from "zod";

const limit = (max: number) => z.number().int().positive().max(max);

/** The roster's `limits:` block; every field optional (absent: the default). */
export const TaskLimitsSpec = z
  .object({
    /** Processes (and threads) alive at once in one command. */
    processes: limit(1 << 22).optional(),
    /** Memory of one command and all it starts (its /tmp counts too: tmpfs pages are memory). */
    memory_mb: limit(1 << 24).optional(),
    /** Largest file a command may write. */
    file_mb: limit(1 << 24).optional(),
    /** Size of the task's workspace (all its files), checked while a command runs and after. */
    workspace_mb: limit(1 << 24).optional(),
    /** Size of the sandbox's private /tmp. */
    tmp_mb: limit(1 << 24).optional(),
    /** CPU seconds of one command (all its processes together). */
    cpu_s: limit(1 << 24).optional(),
  })
  .strict();
export type TaskLimitsSpec = z.infer<typeof TaskLimitsSpec>;
export type TaskLimits = Required<TaskLimitsSpec>;

/** Issue 11: 256 processes, 2 GiB of memory, 1 GiB per file; a bounded workspace and /tmp; CPU time. */
export const DEFAULT_LIMITS: TaskLimits = {
  processes: 256,
  memory_mb: 2048,
  file_mb: 1024,
  workspace_mb: 4096,
  tmp_mb: 512,
  cpu_s: 3600,
};

export function resolveLimits(spec: TaskLimitsSpec | undefined): TaskLimits {
  return { ...DEFAULT_LIMITS, ...spec };
}

export const MIB = 1024 * 1024;

/**
 * prlimit's argv prefix setting hard (and soft) limits, run before the uid
 * drop so the command can't raise them again (pure). `nproc`: also cap
 * RLIMIT_NPROC, when no cgroup counts processes. That limit is per uid: every
 * process of the sandbox user on this machine counts, all tasks together.
 */
export function rlimitArgs(
  limits: TaskLimits,
  opts: { prlimit?: string; nproc?: boolean } = {},
): string[] {
  const both = (n: number) => `${n}:${n}`;
  return [
    opts.prlimit ?? "prlimit",
    `--fsize=${both(limits.file_mb * MIB)}`,
    // SIGXCPU at the limit (bash then says "CPU time limit exceeded"), SIGKILL a second later
    // for a process that ignores it.
    `--cpu=${limits.cpu_s}:${limits.cpu_s + 1}`,
    // A crashing command must not write core files into the workspace.
    "--core=0:0",
    ...(opts.nproc ? [`--nproc=${both(limits.processes)}`] : []),
    "--",
  ];
}

/** Which limit ended (or broke) a command. */
export type LimitName = "processes" | "memory" | "file_size" | "workspace" | "tmp" | "cpu";

export interface LimitHit {
  limit: LimitName;
  /** One line naming the limit, its roster field and value, and what was seen. */
  message: string;
}

/** The line that names a hit limit (pure). */
export function limitMessage(limit: LimitName, limits: TaskLimits, seen: string): string {
  const what: Record<LimitName, string> = {
    processes: `process limit reached (limits.processes = ${limits.processes})`,
    memory: `memory limit reached (limits.memory_mb = ${limits.memory_mb})`,
    file_size: `file size limit reached (limits.file_mb = ${limits.file_mb})`,
    workspace: `workspace size limit exceeded (limits.workspace_mb = ${limits.workspace_mb})`,
    tmp: `/tmp size limit reached (limits.tmp_mb = ${limits.tmp_mb})`,
    cpu: `CPU time limit reached (limits.cpu_s = ${limits.cpu_s})`,
  };
  return `${what[limit]}: ${seen}`;
}

/**
 * What the command's exit says about rlimits (pure): SIGXFSZ for a file
 * over RLIMIT_FSIZE, SIGXCPU at RLIMIT_CPU, as the signal that ended the
 * command or as bash's 128 + the signal (153, 152) and its message;
 * programs that ignore SIGXFSZ (python) get EFBIG, "File too large".
 */
export function rlimitHitFromExit(
  exitCode: number | null,
  output: string,
  signal: string | null = null,
): "file_size" | "cpu" | null {
  if (
    signal === "SIGXFSZ" ||
    exitCode === 128 + 25 ||
    /File size limit exceeded|File too large/.test(output)
  ) {
    return "file_size";
  }
  if (signal === "SIGXCPU" || exitCode === 128 + 24 || /CPU time limit exceeded/.test(output)) {
    return "cpu";
  }
  return null;
}
