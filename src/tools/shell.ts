import { lchown, readdir, readFile, realpath } from "node:fs/promises";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors.ts";
import { createCommandCgroup, type CgroupHits, type CommandCgroup } from "./cgroup.ts";
import { confinedArgv, innerCommand, parseTmpReport } from "./command-line.ts";
import { bwrapArgs, dropArgs, type ShellSandbox } from "./sandbox.ts";
import { openTaskNetwork } from "./task-network.ts";
import {
  MIB,
  limitMessage,
  rlimitArgs,
  rlimitHitFromExit,
  type LimitHit,
  type TaskLimits,
} from "./task-limits.ts";
import { CappedOutput } from "./truncate.ts";
import { chownWorkspace, workspaceUsage } from "./workspace-usage.ts";
import { shellSpan } from "../telemetry/index.ts";

export interface ShellOptions {
  command: string;
  /** Working directory (the task's workspace); also HOME, unless `env` sets one. */
  cwd: string;
  timeoutMs: number;
  /** Aborting kills the command and everything it started. */
  signal?: AbortSignal;
  /** Extra variables on top of the allow-list (see buildShellEnv). */
  env?: Record<string, string>;
  /** Cap of the returned output; the middle is cut, head and tail kept. */
  maxOutputBytes?: number;
  /** How long processes get between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /**
   * Confine it (sandbox.ts): bwrap, or `none` (still the sandbox user, limits and a
   * cgroup); absent: as the worker's own user, unconfined, no limits.
   */
  sandbox?: ShellSandbox;
  /**
   * Argv put in front of the uid drop and the sandbox, run as the worker inside the
   * command's cgroup (e.g. `ip netns exec <ns>` for a task's own network namespace).
   */
  prefix?: string[];
}

export interface ShellResult {
  /** null when the command was killed by a signal or could not start. */
  exit_code: number | null;
  /** stdout and stderr interleaved as they arrived, capped with a visible note. */
  output: string;
  timed_out: boolean;
  aborted: boolean;
  duration_ms: number;
  /** The signal that ended the command, if one did. */
  signal: string | null;
  /** A resource limit it ran into (task-limits.ts); the command then counts as failed. */
  limit?: LimitHit;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
const DEFAULT_KILL_GRACE_MS = 2_000;

/**
 * Run `command` with bash in `cwd`, in its own process group, and return what
 * happened; a non-zero exit is a result, not an exception.
 *
 * Nothing it starts outlives the call: on timeout or abort the whole group
 * gets SIGTERM then SIGKILL, and when bash itself exits any background
 * process it left (`server &`) is terminated the same way, so the output
 * pipes close and no stray process keeps running in the worker. A command
 * that needs a server must start and use it in the same call.
 *
 * The environment is an allow-list (buildShellEnv), never the worker's own,
 * so API keys and NATS credentials do not reach the command. stdin is closed,
 * so a command waiting for input gets EOF instead of hanging. With `sandbox`
 * the command runs under bwrap (see sandbox.ts); the same rules apply, and
 * a sandbox with `network: true` puts it in a network namespace of its own
 * (task-network.ts), deleted when it ends. Where that can't be had, the
 * command does not run: it never falls back to the host's network.
 */
export function runShell(opts: ShellOptions): Promise<ShellResult> {
  // A span per command (a `run` step, a `verify` check, an agent's run_shell), child of the active one.
  return shellSpan(opts.command, () => runShellUntraced(opts));
}

async function runShellUntraced(opts: ShellOptions): Promise<ShellResult> {
  const sb = opts.sandbox;
  if (sb?.kind !== "bwrap" || !sb.network || opts.signal?.aborted) return runConfined(opts);
  const started = performance.now();
  let network;
  try {
    network = await openTaskNetwork();
  } catch (err) {
    return {
      exit_code: null,
      output: `failed to start the command: ${errorMessage(err)}\n`,
      timed_out: false,
      aborted: false,
      duration_ms: Math.round(performance.now() - started),
      signal: null,
    };
  }
  try {
    return await runConfined({ ...opts, prefix: [...network.argvPrefix, ...(opts.prefix ?? [])] });
  } finally {
    await network.close();
  }
}

/** runShell once the command's network, if it has one, is there. */
async function runConfined(opts: ShellOptions): Promise<ShellResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (opts.signal?.aborted) {
    return {
      exit_code: null,
      output: "",
      timed_out: false,
      aborted: true,
      duration_ms: 0,
      signal: null,
    };
  }
  const graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const output = new CappedOutput(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
  const sb = opts.sandbox;
  const failedToStart = (why: string): ShellResult => ({
    exit_code: null,
    output: `failed to start the command: ${why}\n`,
    timed_out: false,
    aborted: false,
    duration_ms: elapsed(),
    signal: null,
  });

  // One pipe for both streams keeps their true order (two pipes race); stderr
  // is still read for what bash says before the redirect runs (syntax errors).
  const script = `exec 2>&1; ${opts.command}`;
  // bwrap binds real paths; a symlinked workspace would otherwise bind the link.
  const home = sb ? await realpath(opts.cwd).catch(() => opts.cwd) : opts.cwd;
  const limits = sb?.limits;
  let cgroup: CommandCgroup | null = null;
  if (sb?.user) {
    // The command runs as the sandbox user: what the submitter copied in or the worker
    // wrote as root must become its own, or it could not change its own workspace.
    try {
      const u = await workspaceUsage(home, sb.user.uid);
      // A fresh workspace (only its directory is the worker's) needs no walk: one lchown.
      if (u.onlyTopForeign) await lchown(home, sb.user.uid, sb.user.gid);
      else if (u.foreign) await chownWorkspace(home, sb.user);
    } catch (err) {
      return failedToStart(`cannot hand the workspace to uid ${sb.user.uid}: ${errorMessage(err)}`);
    }
  }
  if (sb?.cgroups && limits) {
    try {
      cgroup = await createCommandCgroup(sb.cgroups, limits);
    } catch (err) {
      return failedToStart(`cannot create the command's cgroup: ${errorMessage(err)}`);
    }
  }
  const inner =
    sb?.kind === "bwrap"
      ? // --info-fd: bwrap writes the pid of the sandbox's PID 1 there (then closes it; the command never sees it).
        [sb.bin, "--info-fd", "3", ...bwrapArgs(sb, home), "--", ...innerCommand(script)]
      : ["/bin/bash", "-c", script];
  const [file, ...argv] = confinedArgv({
    ...(cgroup ? { cgroupProcs: cgroup.procsFiles } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
    ...(limits ? { rlimits: rlimitArgs(limits, { nproc: !cgroup }) } : {}),
    drop: dropArgs(sb?.user),
    command: inner,
  }) as [string, ...string[]];

  // Loaded on the first command, not with this module: a replica that only waits for
  // tasks then never holds execa (several MB of resident memory, docs/benchmarks.md).
  const { execa } = await import("execa");
  const boxed = sb?.kind === "bwrap";
  const child = execa(file, argv, {
    cwd: opts.cwd,
    // bwrap passes its own environment on: the allow-list, nothing of the worker's.
    env: buildShellEnv(opts.env, { home, ...(boxed ? { tmpdir: "/tmp" } : {}) }),
    extendEnv: false,
    // Own process group (execa spawns it detached) and kills signal the whole group;
    // unlike a bare `detached: true`, execa still kills it if the worker exits.
    killDescendants: true,
    stdio: boxed ? ["ignore", "pipe", "pipe", "pipe", "pipe"] : ["ignore", "pipe", "pipe"],
    buffer: false,
    reject: false,
    forceKillAfterDelay: false,
  });
  child.stdout?.on("data", (b: Buffer) => output.push(b));
  child.stderr?.on("data", (b: Buffer) => output.push(b));
  /** The sandbox's PID 1, as our PID namespace sees it (from bwrap's --info-fd). */
  let sandboxInit: number | undefined;
  let info = "";
  child.stdio[3]?.on("data", (b: Buffer) => {
    info += b.toString();
    // The number only once it is whole: a chunk may end inside it.
    const m = /"child-pid":\s*(\d+)[,\s}]/.exec(info);
    if (m) sandboxInit = Number(m[1]);
  });
  let tmpReport = "";
  child.stdio[4]?.on("data", (b: Buffer) => {
    if (tmpReport.length < 256) tmpReport += b.toString();
  });

  let timedOut = false;
  let aborted = false;
  let terminating: Promise<void> | undefined;
  const terminate = () => {
    const pgid = child.pid;
    if (pgid === undefined) return cgroup ? cgroup.kill() : Promise.resolve();
    // Sandboxed, every process of the group but bwrap itself lives in the sandbox's PID
    // namespace, and once its PID 1 has exited the kernel has killed and reaped all the
    // others: those two processes say whether the group lives, no /proc scan needed.
    const members = () => (sandboxInit === undefined ? null : [pgid, sandboxInit]);
    // Then the cgroup: whatever left the process group (setsid) is still in it.
    terminating ??= terminateGroup(pgid, graceMs, members).then(() => cgroup?.kill());
    return terminating;
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void terminate();
  }, opts.timeoutMs);
  const onAbort = () => {
    aborted = true;
    void terminate();
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  // Aborted while we awaited above (realpath, loading execa): the event has been and gone.
  if (opts.signal?.aborted) onAbort();
  // bash is done: whatever it left in the background goes too (else it holds the pipes open).
  child.nodeChildProcess.once("exit", () => void terminate());

  // While it runs, the limits the kernel does not enforce by itself (workspace size, the
  // command's total CPU time) are watched, and a limit the kernel enforced ends it.
  let hit: LimitHit | null = null;
  const watch = limits
    ? watchLimits({
        workspace: home,
        limits,
        cgroup,
        onHit: (h) => {
          hit ??= h;
          // No grace for a command over its limits: the cgroup is killed at once, then the rest.
          void (cgroup ? cgroup.kill() : Promise.resolve()).then(terminate);
        },
      })
    : null;

  const result = await child;
  clearTimeout(timer);
  opts.signal?.removeEventListener("abort", onAbort);
  await watch?.stop();
  await terminate();

  if (child.pid === undefined || (result.exitCode === undefined && !result.signal)) {
    output.push(
      Buffer.from(
        `failed to start the command: ${result.originalMessage || result.shortMessage}\n`,
      ),
    );
  }
  if (limits) {
    hit ??= await limitAfter({
      workspace: home,
      limits,
      cgroup,
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? null,
      output: output.text(),
      tmp: boxed ? parseTmpReport(tmpReport) : null,
    });
  }
  await cgroup?.remove();
  if (hit) output.push(Buffer.from(`\n[squad: ${hit.message}]\n`));
  return {
    exit_code: result.exitCode ?? null,
    output: output.text(),
    timed_out: timedOut,
    aborted,
    duration_ms: elapsed(),
    signal: result.signal ?? null,
    ...(hit ? { limit: hit } : {}),
  };
}

/** Cgroup counters are cheap to read; a workspace walk is not, so it runs at most every second. */
const CGROUP_POLL_MS = 200;
const WALK_MIN_INTERVAL_MS = 1000;

/**
 * Watches a running command: the kernel's limit events (a refused fork, an
 * OOM kill) and its CPU time in the cgroup, and the workspace's size. Calls
 * `onHit` once with the first limit seen. Never blocks the event loop.
 */
function watchLimits(o: {
  workspace: string;
  limits: TaskLimits;
  cgroup: CommandCgroup | null;
  onHit: (h: LimitHit) => void;
}): { stop(): Promise<void> } {
  let stopped = false;
  let lastWalk = 0;
  let walkCost = 0;
  // Stopping cuts the wait short: the command's end must not wait for the next poll.
  const wake = new AbortController();
  const loop = (async () => {
    while (!stopped) {
      await sleep(CGROUP_POLL_MS, undefined, { signal: wake.signal }).catch(() => {});
      if (stopped) break;
      const h = o.cgroup ? cgroupHit(await o.cgroup.hits(), o.limits) : null;
      if (h) return o.onHit(h);
      // A big workspace costs a walk; walk no more than a twentieth of the time.
      if (Date.now() - lastWalk >= Math.max(WALK_MIN_INTERVAL_MS, walkCost * 20)) {
        const t = Date.now();
        const u = await workspaceUsage(o.workspace);
        walkCost = Date.now() - t;
        lastWalk = Date.now();
        if (u.bytes > o.limits.workspace_mb * MIB) {
          return o.onHit(workspaceHit(u.bytes, o.limits));
        }
      }
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      wake.abort();
      await loop;
    },
  };
}

function cgroupHit(h: CgroupHits, limits: TaskLimits): LimitHit | null {
  if (h.pidsMax > 0) {
    return {
      limit: "processes",
      message: limitMessage("processes", limits, `${h.pidsMax} fork(s) refused`),
    };
  }
  if (h.oomKills > 0) {
    return {
      limit: "memory",
      message: limitMessage("memory", limits, `${h.oomKills} process(es) killed by the kernel`),
    };
  }
  if (h.cpuS !== null && h.cpuS >= limits.cpu_s) {
    return { limit: "cpu", message: limitMessage("cpu", limits, `${h.cpuS.toFixed(1)} s used`) };
  }
  return null;
}

const workspaceHit = (bytes: number, limits: TaskLimits): LimitHit => ({
  limit: "workspace",
  message: limitMessage("workspace", limits, `${(bytes / MIB).toFixed(1)} MiB in the workspace`),
});

/** After the command: which limit, if any, it ran into (the watch may have missed a quick one). */
async function limitAfter(o: {
  workspace: string;
  limits: TaskLimits;
  cgroup: CommandCgroup | null;
  exitCode: number | null;
  signal: string | null;
  output: string;
  tmp: { total: number; free: number } | null;
}): Promise<LimitHit | null> {
  const fromCgroup = o.cgroup ? cgroupHit(await o.cgroup.hits(), o.limits) : null;
  if (fromCgroup) return fromCgroup;
  const u = await workspaceUsage(o.workspace);
  if (u.bytes > o.limits.workspace_mb * MIB) return workspaceHit(u.bytes, o.limits);
  const fileLimit = o.limits.file_mb * MIB;
  const r = rlimitHitFromExit(o.exitCode, o.output, o.signal);
  if (r === "file_size" || u.largest >= fileLimit) {
    return {
      limit: "file_size",
      message: limitMessage(
        "file_size",
        o.limits,
        u.largest >= fileLimit
          ? `a file of ${(u.largest / MIB).toFixed(1)} MiB`
          : "a write was refused",
      ),
    };
  }
  if (r === "cpu") {
    return {
      limit: "cpu",
      message: limitMessage("cpu", o.limits, "a process used all its CPU time"),
    };
  }
  // Full: less than 1% or 64 KiB left (the tmpfs rounds to pages).
  if (o.tmp && o.tmp.free <= Math.max(64 * 1024, o.tmp.total / 100)) {
    return {
      limit: "tmp",
      message: limitMessage(
        "tmp",
        o.limits,
        `${(o.tmp.total / MIB).toFixed(1)} MiB in /tmp, none left`,
      ),
    };
  }
  return null;
}

/** One line for logs, results and the model: how the command ended. */
export function describeShellEnd(r: ShellResult, timeoutMs: number): string {
  if (r.timed_out) {
    return `timed out after ${Math.round(timeoutMs / 1000)}s; the command and everything it started were killed`;
  }
  if (r.aborted)
    return "aborted (task cancelled); the command and everything it started were killed";
  if (r.limit) return `stopped: ${r.limit.message}`;
  if (r.exit_code === null) return `killed by ${r.signal ?? "a signal"}`;
  return `exit_code: ${r.exit_code}`;
}

/**
 * The only environment a command sees: PATH, HOME (the workspace), LANG,
 * TMPDIR, TERM=dumb and non-interactive defaults, plus `extra`. Nothing else
 * from `from` (the worker's environment) is copied.
 */
export function buildShellEnv(
  extra: Record<string, string> = {},
  opts: { home?: string; tmpdir?: string; from?: NodeJS.ProcessEnv } = {},
): Record<string, string> {
  const from = opts.from ?? process.env;
  const env: Record<string, string> = {
    PATH: from.PATH || "/usr/local/bin:/usr/bin:/bin",
    LANG: from.LANG || "C.UTF-8",
    TMPDIR: opts.tmpdir ?? (from.TMPDIR || os.tmpdir()),
    TERM: "dumb",
    // Tools that would prompt, page or colour behave as in CI instead.
    CI: "true",
    NO_COLOR: "1",
    PAGER: "cat",
    GIT_PAGER: "cat",
    GIT_TERMINAL_PROMPT: "0",
  };
  if (opts.home !== undefined) env.HOME = opts.home;
  return { ...env, ...extra };
}

/**
 * SIGTERM the group, wait up to `graceMs` for it to go, then SIGKILL what is left.
 * `members()`: the only processes whose life decides the group's, when known
 * (a sandboxed command); else the group is looked for in all of /proc.
 */
async function terminateGroup(
  pgid: number,
  graceMs: number,
  members: () => number[] | null,
): Promise<void> {
  // The usual end: the command exited and left nothing, not even a zombie.
  if (!signalGroup(pgid, "SIGTERM")) return;
  const alive = () => {
    const known = members();
    return known ? anyAlive(known, pgid) : groupAlive(pgid);
  };
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await alive())) return;
    await sleep(25);
  }
  signalGroup(pgid, "SIGKILL");
  // SIGKILL is delivered asynchronously: return only once the group is gone,
  // so a caller never sees a process it was told was killed (bounded wait).
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && (await alive())) await sleep(10);
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is already gone
  }
}

/**
 * Whether any process of the group still runs. Killed orphans stay zombies
 * until init reaps them (some container inits never do), and signalling a
 * zombie succeeds, so on Linux /proc is read and zombies do not count.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  if (process.platform !== "linux") return signalGroup(pgid, 0);
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((d) => /^\d+$/.test(d));
  } catch {
    return signalGroup(pgid, 0);
  }
  for (const pid of pids) if (await runsInGroup(pid, pgid)) return true;
  return false;
}

/** Whether one of `pids` still runs in the group (not a zombie, not gone, not reused). */
async function anyAlive(pids: number[], pgid: number): Promise<boolean> {
  if (process.platform !== "linux") return signalGroup(pgid, 0);
  for (const pid of pids) if (await runsInGroup(String(pid), pgid)) return true;
  return false;
}

async function runsInGroup(pid: string, pgid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const close = stat.lastIndexOf(")");
  if (close < 0) return false;
  // After "(comm)": state ppid pgrp ...
  const [state, , pgrp] = stat.slice(close + 2).split(" ");
  return Number(pgrp) === pgid && state !== "Z" && state !== "X";
}
