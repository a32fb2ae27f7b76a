/**
 * The OS sandbox of shell commands: bubblewrap (`bwrap`, Debian's
 * `bubblewrap` package), entered as an unprivileged user. A sandboxed command
 *
 * - runs as the sandbox user (sandbox-user.ts: uid 65534 unless configured)
 *   when the worker is root: `setpriv` drops to it before bwrap starts, and
 *   bwrap then makes an unprivileged user namespace. (Root inside a user
 *   namespace that root created is still root to the host's permission
 *   checks: /proc/sys would be writable, /etc/shadow readable.) So the
 *   host's kernel settings (/proc/sys, /proc/sysrq-trigger) are not
 *   writable, and /sys is not there at all;
 * - sees only an allow-list of the system, read-only (sandbox-view.ts):
 *   /usr and its /bin, /lib* symlinks, a minimal /etc, the toolchains on its
 *   PATH; plus its mission's workspace read-write and a private /tmp of
 *   bounded size. No /root, /home, /var, /run, no other mission, no state
 *   directory;
 * - has its own PID namespace and /proc, so the worker process (and its
 *   environment, `/proc/$PPID/environ`) does not exist for it;
 * - has no network (its own empty network namespace) unless the agent's
 *   policy says `network: true`;
 * - has no capabilities, and its own cgroup and hard rlimits (see shell.ts,
 *   cgroup.ts, task-limits.ts).
 *
 * Nothing it starts outlives it: bwrap's PID 1 dies with the command and
 * the kernel then kills the whole namespace; the cgroup is killed too.
 */
import { spawn } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, realpath, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { BadInputError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { detectCgroups, type CgroupSupport } from "./cgroup.ts";
import { sandboxUser, type SandboxUser } from "./sandbox-user.ts";
import {
  ETC_ALLOWED,
  SYSTEM_DIRS,
  depth,
  hostEntries,
  isWithin,
  readableBy,
  toolchainDirs,
  type ViewEntry,
} from "./sandbox-view.ts";
import {
  DEFAULT_LIMITS,
  MIB,
  resolveLimits,
  type TaskLimits,
  type TaskLimitsSpec,
} from "./task-limits.ts";

export { isWithin };

export const SandboxMode = z.enum(["bwrap", "none"]);
export type SandboxMode = z.infer<typeof SandboxMode>;

/** What confines a command whatever the sandbox: who it runs as, its limits, its cgroup. */
export interface Confinement {
  /** The uid commands run as when the worker is root (sandbox-user.ts); null: the worker's own. */
  user?: SandboxUser | null;
  /** Absent: no limits (a bare runShell); a worker always sets them. */
  limits?: TaskLimits;
  /** Per-command cgroups; null or absent where they can't be used (rlimits only). */
  cgroups?: CgroupSupport | null;
}

/** How run_shell confines commands: bwrap, or `none` (no sandbox, still user, limits, cgroup). */
export type ShellSandbox = BwrapSandbox | NoSandbox;

export interface NoSandbox extends Confinement {
  kind: "none";
}

export interface BwrapSandbox extends Confinement {
  kind: "bwrap";
  bin: string;
  /** Hidden; the command's own workspace, below it, is bound back read-write. */
  workspaceRoot: string;
  /** The system allow-list (sandbox-view.ts); absent: /usr and merged-/usr symlinks only. */
  system?: ViewEntry[];
  /** Never visible, even where a bound directory holds them (state directory, workspace root). */
  hide: string[];
  /** Toolchain directories on PATH outside the system view, bound read-only. */
  expose: string[];
  network: boolean;
  /**
   * SWARM_TASK_SHARED_DIR: one directory every task of every mission may read
   * and write, at the same path (an operator's opt-in, e.g. a package cache,
   * or the chaos runner's witness of executions). Absent: none.
   */
  shared?: string;
}

/** The view when none was computed: a merged-/usr system. */
const MERGED_USR: ViewEntry[] = [
  { bind: "/usr" },
  { symlink: "/bin", target: "usr/bin" },
  { symlink: "/sbin", target: "usr/sbin" },
  { symlink: "/lib", target: "usr/lib" },
  { symlink: "/lib64", target: "usr/lib64" },
];

/**
 * bwrap's arguments for one command in `workspace` (a real path inside the
 * workspace root), up to and excluding the command itself (pure). Mount
 * order matters: parents before children, the workspace after what holds it,
 * then what must stay hidden inside anything bound.
 */
export function bwrapArgs(sb: BwrapSandbox, workspace: string): string[] {
  const limits = sb.limits ?? DEFAULT_LIMITS;
  const args = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
  args.push("--unshare-cgroup-try");
  if (!sb.network) args.push("--unshare-net");
  const bound: string[] = [];
  for (const e of sb.system ?? MERGED_USR) {
    if ("bind" in e) {
      args.push("--ro-bind", e.bind, e.bind);
      bound.push(e.bind);
    } else {
      args.push("--symlink", e.target, e.symlink);
    }
  }
  args.push("--dev", "/dev", "--proc", "/proc");
  args.push("--size", String(limits.tmp_mb * MIB), "--tmpfs", "/tmp");
  args.push("--dir", "/var", "--symlink", "../tmp", "/var/tmp");
  for (const p of sb.expose) {
    if (!isWithin(p, sb.workspaceRoot)) {
      args.push("--ro-bind-try", p, p);
      bound.push(p);
    }
  }
  // The root's other entries (missions, reports) are never there: an empty tmpfs under the workspace.
  args.push("--tmpfs", sb.workspaceRoot, "--bind", workspace, workspace);
  bound.push(workspace);
  if (sb.shared) {
    args.push("--bind", sb.shared, sb.shared);
    bound.push(sb.shared);
  }
  const hide = [...new Set(sb.hide)]
    .filter((d) => d !== "/" && d !== sb.workspaceRoot && bound.some((b) => isWithin(d, b)))
    .sort((a, b) => depth(a) - depth(b));
  for (const d of hide) args.push("--tmpfs", d);
  args.push("--die-with-parent", "--cap-drop", "ALL", "--chdir", workspace);
  return args;
}

/** The full argv after the bwrap binary: sandbox, then `bash -c <script>`. */
export function bwrapCommand(sb: BwrapSandbox, workspace: string, script: string): string[] {
  return [...bwrapArgs(sb, workspace), "--", "/bin/bash", "-c", script];
}

/** `setpriv` dropping to the sandbox user (pure); [] when there is no user to drop to. */
export function dropArgs(user: SandboxUser | null | undefined): string[] {
  if (!user) return [];
  return [
    "setpriv",
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    // setuid binaries (su, sudo, mount) can't give the privileges back.
    "--no-new-privs",
    "--",
  ];
}

export type BwrapProbe =
  { ok: true; bin: string; version: string } | { ok: false; bin: string | null; reason: string };

const probes = new Map<string, Promise<BwrapProbe>>();

/**
 * Is bubblewrap usable here, and does it confine? Present, a trivial command
 * runs in exactly the sandbox commands get (as the sandbox user; user
 * namespaces may be disabled, a container may forbid mounts), and from
 * inside it the host's kernel settings are not writable and /etc/shadow is
 * not readable. Probed once per binary and user per process.
 */
export function probeBwrap(
  bin?: string,
  user: SandboxUser | null = sandboxUser(),
): Promise<BwrapProbe> {
  const key = `${bin ?? ""}|${user ? `${user.uid}:${user.gid}` : "self"}`;
  let p = probes.get(key);
  if (!p) {
    p = runProbe(bin, user);
    probes.set(key, p);
  }
  return p;
}

/** Each check prints a line only when the sandbox fails it (opening for writing writes nothing). */
const PROBE_SCRIPT = [
  "touch ok || exit 1",
  ...["/proc/sys/kernel/core_pattern", "/proc/sys/vm/swappiness", "/proc/sysrq-trigger"].map(
    (f) => `( exec 3>${f} ) 2>/dev/null && echo "UNSAFE: ${f} is writable"`,
  ),
  '( exec 3</etc/shadow ) 2>/dev/null && echo "UNSAFE: /etc/shadow is readable"',
  'test -w /usr && echo "UNSAFE: /usr is writable"',
  'test "$(id -u)" = 0 && echo "UNSAFE: the command runs as uid 0"',
  "echo probe-done",
].join("\n");

async function runProbe(
  explicit: string | undefined,
  user: SandboxUser | null,
): Promise<BwrapProbe> {
  const bin = explicit ?? (await findOnPath("bwrap")) ?? null;
  if (!bin) {
    return { ok: false, bin: null, reason: "bwrap is not installed (apt-get install bubblewrap)" };
  }
  if (
    !(await stat(bin).then(
      (s) => s.isFile() && (s.mode & 0o111) !== 0,
      () => false,
    ))
  ) {
    return { ok: false, bin, reason: `${bin} is not an executable file` };
  }
  const root = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-sandbox-probe-")));
  const workspace = path.join(root, "mission");
  try {
    await mkdir(workspace);
    await openRootToUser(root, user);
    if (user) await chown(workspace, user.uid, user.gid);
    const sb: BwrapSandbox = {
      kind: "bwrap",
      bin,
      workspaceRoot: root,
      system: await systemView(),
      hide: [],
      expose: [],
      network: false,
      user,
    };
    const argv = [...dropArgs(user), bin, ...bwrapCommand(sb, workspace, PROBE_SCRIPT)];
    const r = await runBounded(argv[0]!, argv.slice(1), {
      timeoutMs: 10_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    if (r.code !== 0 || !r.output.includes("probe-done")) {
      const why = r.output.trim() || r.ended;
      return {
        ok: false,
        bin,
        reason:
          /ENOENT/.test(why) && user
            ? `setpriv (util-linux) is needed to drop root before bwrap: ${why}`
            : `a sandboxed \`true\` failed: ${why}`,
      };
    }
    const unsafe = r.output
      .split("\n")
      .filter((l) => l.startsWith("UNSAFE: "))
      .map((l) => l.slice(8));
    if (unsafe.length) {
      return {
        ok: false,
        bin,
        reason:
          `the sandbox does not confine here: ${unsafe.join("; ")} from inside it` +
          (user
            ? ` (commands run as uid ${user.uid}: check that this uid owns none of these, or set SWARM_SANDBOX_UID to an unused uid)`
            : process.getuid?.() === 0
              ? " (bwrap was entered as root: commands must drop to an unprivileged uid first, see sandbox-user.ts)"
              : " (run the worker as a user that owns none of these)"),
      };
    }
    const written = await stat(path.join(workspace, "ok")).then(
      () => true,
      () => false,
    );
    if (!written) return { ok: false, bin, reason: "the sandbox could not write its workspace" };
    const v = await runBounded(bin, ["--version"], { timeoutMs: 5000 });
    return { ok: true, bin, version: (v.code === 0 && v.output.trim()) || "unknown" };
  } catch (err) {
    return { ok: false, bin, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The host's system allow-list (sandbox-view.ts), read once per process. */
let view: Promise<ViewEntry[]> | undefined;
export function systemView(): Promise<ViewEntry[]> {
  view ??= hostEntries([...SYSTEM_DIRS, ...ETC_ALLOWED]);
  return view;
}

/**
 * Lets the sandbox user reach its missions under `workspaceRoot`: the root
 * gets o+x (bwrap, running as that user, opens the path to bind it; listing
 * stays denied when it was), and every directory above it must already let
 * the user pass: a BadInputError says which does not. (The missions
 * themselves are handed to the user before each command, see shell.ts.)
 */
export async function openRootToUser(
  workspaceRoot: string,
  user: SandboxUser | null | undefined,
): Promise<void> {
  if (!user) return;
  const s = await stat(workspaceRoot);
  if ((s.mode & 0o001) === 0) await chmod(workspaceRoot, (s.mode & 0o7777) | 0o001);
  for (let d = path.dirname(workspaceRoot); ; d = path.dirname(d)) {
    const a = await stat(d);
    const passes =
      (a.mode & 0o001) !== 0 ||
      (a.uid === user.uid && (a.mode & 0o100) !== 0) ||
      (a.gid === user.gid && (a.mode & 0o010) !== 0);
    if (!passes) {
      throw new BadInputError(
        `the sandbox user (uid ${user.uid}) cannot reach the workspace ${workspaceRoot}: ${d} is mode ` +
          `${(a.mode & 0o777).toString(8)}. Put SWARM_WORKSPACE under a directory others may pass through ` +
          `(e.g. /var/lib/squad), or chmod o+x ${d}.`,
      );
    }
    if (d === "/") break;
  }
}

/** How a probe command ended: its exit code (null if it never ran or was killed), its output. */
interface Bounded {
  code: number | null;
  /** stdout and stderr as they came, at most 16 KiB. */
  output: string;
  /** What ended it, for messages when it said nothing itself. */
  ended: string;
}

/**
 * Runs a short probe command to its end or `timeoutMs` (then SIGKILL), stdin
 * closed, and never throws. node:child_process rather than execa: the probe
 * runs as every replica starts, and execa would stay loaded (several MB) in
 * replicas that never run a command.
 */
function runBounded(
  file: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<Bounded> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ["ignore", "pipe", "pipe"],
      ...(opts.env ? { env: opts.env } : {}),
    });
    let output = "";
    const take = (b: Buffer) => {
      if (output.length < 16_384) output += b.toString("utf8", 0, 16_384 - output.length);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    const finish = (r: Bounded) => {
      clearTimeout(timer);
      resolve(r);
    };
    // A spawn failure (ENOENT, EACCES) is reported here, and "close" may never follow.
    child.once("error", (err) => finish({ code: null, output, ended: err.message }));
    child.once("close", (code, signal) =>
      finish({
        code,
        output,
        ended: timedOut
          ? `timed out after ${opts.timeoutMs} ms`
          : signal
            ? `killed by ${signal}`
            : `exit code ${code}`,
      }),
    );
  });
}

/** SWARM_STATE_DIR (default `.swarm/state`): credentials live there; no command may see it. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.SWARM_STATE_DIR?.trim() || ".swarm/state");
}

const cgroupProbes = new Map<string, ReturnType<typeof detectCgroups>>();
/** This process's cgroups (or SWARM_CGROUP's), checked once (cgroup.ts). */
export function cgroupsHere(
  env: NodeJS.ProcessEnv = process.env,
): ReturnType<typeof detectCgroups> {
  const key = env.SWARM_CGROUP?.trim() ?? "";
  let p = cgroupProbes.get(key);
  if (!p) {
    p = detectCgroups(env);
    cgroupProbes.set(key, p);
  }
  return p;
}

/**
 * The sandbox for one agent's commands: the system view of this machine,
 * the toolchains on the commands' PATH outside it, and what must stay
 * hidden (the workspace root's other entries, the state directory).
 */
export async function prepareBwrapSandbox(opts: {
  bin: string;
  workspaceRoot: string;
  network: boolean;
  /** The PATH commands get. */
  path: string;
  /** Default: sandboxUser() (the unprivileged uid when the worker is root). */
  user?: SandboxUser | null;
  limits?: TaskLimitsSpec;
  /** Default: this process's cgroups when usable, else none. */
  cgroups?: CgroupSupport | null;
  env?: NodeJS.ProcessEnv;
}): Promise<BwrapSandbox> {
  const env = opts.env ?? process.env;
  await mkdir(opts.workspaceRoot, { recursive: true });
  const workspaceRoot = await realpath(opts.workspaceRoot);
  const system = await systemView();
  const visible = await Promise.all(
    system.map((e) => ("bind" in e ? realpath(e.bind).catch(() => e.bind) : e.symlink)),
  );
  const state = stateDir(env);
  const realState = await realpath(state).catch(() => state);
  const hide = [...new Set([workspaceRoot, state, realState])];
  const user = opts.user === undefined ? sandboxUser(env) : opts.user;
  const expose = await toolchainDirs({
    path: opts.path,
    visible,
    secret: hide,
    ...(user ? { readable: (d: string) => readableBy(d, user.uid, user.gid) } : {}),
  });
  await openRootToUser(workspaceRoot, user);
  const shared = await sharedDir(env, [workspaceRoot, ...hide]);
  const cgroups =
    opts.cgroups === undefined
      ? ((c) => (c.ok ? c.support : null))(await cgroupsHere(env))
      : opts.cgroups;
  return {
    kind: "bwrap",
    bin: opts.bin,
    workspaceRoot,
    system,
    hide,
    expose,
    network: opts.network,
    ...(shared ? { shared } : {}),
    user,
    limits: resolveLimits(opts.limits),
    cgroups,
  };
}

/**
 * SWARM_TASK_SHARED_DIR, checked: an absolute directory that neither holds
 * nor lies in the workspace root or the state directory (those stay hidden).
 */
async function sharedDir(
  env: NodeJS.ProcessEnv,
  secret: readonly string[],
): Promise<string | null> {
  const named = env.SWARM_TASK_SHARED_DIR?.trim();
  if (!named) return null;
  const real = path.isAbsolute(named) ? await realpath(named).catch(() => null) : null;
  if (!real || !(await stat(real).catch(() => null))?.isDirectory()) {
    throw new BadInputError(`SWARM_TASK_SHARED_DIR=${named}: not an absolute path of a directory`);
  }
  const clash = secret.find((d) => isWithin(real, d) || isWithin(d, real));
  if (clash) {
    throw new BadInputError(
      `SWARM_TASK_SHARED_DIR=${named} overlaps ${clash}, which tasks must never see: choose a directory outside it`,
    );
  }
  return real;
}

async function findOnPath(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    const s = await stat(file).catch(() => null);
    if (s?.isFile() && s.mode & 0o111) return file;
  }
  return undefined;
}

export type ResolvedSandbox =
  | { mode: "bwrap"; bin: string; version: string }
  | { mode: "none"; requested: "none" }
  | { mode: "none"; requested: "default"; reason: string };

/**
 * The sandbox an agent gets: the one asked for (roster `sandbox`, else the
 * machine default SWARM_SANDBOX), else bwrap when the probe says it works.
 * Asking for bwrap where it can't work is an error, never a silent downgrade;
 * only the unasked default falls back to none (the caller warns loudly).
 */
export function resolveSandbox(
  requested: SandboxMode | undefined,
  probe: BwrapProbe,
): ResolvedSandbox | { error: string } {
  if (requested === "none") return { mode: "none", requested: "none" };
  if (probe.ok) return { mode: "bwrap", bin: probe.bin, version: probe.version };
  if (requested === "bwrap") return { error: probe.reason };
  return { mode: "none", requested: "default", reason: probe.reason };
}

/** The error of an asked-for bwrap that can't work here: what failed and the two ways out. */
export function sandboxUnavailable(agent: string, requestedBy: string, why: string): BadInputError {
  return new BadInputError(
    `agent ${agent}: ${requestedBy} asks for sandbox: bwrap, but bubblewrap can't run here: ${why}. ` +
      "Install it (apt-get install bubblewrap; in a container allow user namespaces or run privileged), " +
      "or set sandbox: none to run commands unconfined (see docs/security.md).",
  );
}

/**
 * The sandbox of one agent's commands; probes bwrap and the cgroups (once
 * per process). Asked-for bwrap that can't work is a BadInputError (the
 * worker refuses to start); an unasked fallback to none is logged loudly,
 * with what it means. Under none as under bwrap, commands run as the sandbox
 * user when the worker is root, with the agent's limits and their own cgroup.
 */
export async function sandboxForAgent(opts: {
  agent: string;
  /** From the roster entry, else SWARM_SANDBOX; undefined: the default. */
  requested: SandboxMode | undefined;
  /** Where the request came from, for the error message. */
  requestedBy: string;
  workspaceRoot: string;
  network: boolean;
  log: Logger;
  /** The roster entry's `limits`, over the defaults. */
  limits?: TaskLimitsSpec;
  /** PATH of the commands (toolchains outside the system view stay visible). */
  path?: string;
  bwrapBin?: string;
  env?: NodeJS.ProcessEnv;
}): Promise<ShellSandbox> {
  const env = opts.env ?? process.env;
  const user = sandboxUser(env);
  const probe = await probeBwrap(opts.bwrapBin, user);
  const r = resolveSandbox(opts.requested, probe);
  if ("error" in r) throw sandboxUnavailable(opts.agent, opts.requestedBy, r.error);
  const limits = resolveLimits(opts.limits);
  const cg = await cgroupsHere(env);
  const cgroups = cg.ok ? cg.support : null;
  if (!cg.ok) {
    opts.log.warn(
      { agent: opts.agent, reason: cg.reason },
      "cgroups are not usable here, so commands get rlimits only: memory is not limited, the process " +
        `limit (${limits.processes}) is RLIMIT_NPROC, which counts every process of the sandbox user on this ` +
        "machine (all tasks together), and under sandbox: none a process that leaves its process group " +
        "(setsid) can outlive its task. Run the worker as root, or delegate a cgroup v2 subtree to it " +
        "(SWARM_CGROUP) to get per-command limits.",
    );
  }
  if (r.mode === "none") {
    if (r.requested === "none") {
      opts.log.warn(
        { agent: opts.agent, sandbox: "none", user: user?.uid ?? "self" },
        `sandbox: none (${opts.requestedBy}): shell commands run without a sandbox, ` +
          (user ? `as uid ${user.uid}` : "as this worker's user") +
          " (see docs/security.md for what that does not protect)",
      );
    } else {
      opts.log.error(
        { agent: opts.agent, sandbox: "none", reason: r.reason },
        "NO SANDBOX: bubblewrap is not usable here, so shell commands run unconfined " +
          (user ? `as uid ${user.uid}` : "as this worker's user") +
          ": they can write anywhere that user can, read other missions' workspaces and open network " +
          "connections. Install bubblewrap (apt-get install bubblewrap), or set sandbox: none in the roster " +
          "(or SWARM_SANDBOX=none) to accept this explicitly.",
      );
    }
    await mkdir(opts.workspaceRoot, { recursive: true });
    await openRootToUser(await realpath(opts.workspaceRoot), user);
    return { kind: "none", user, limits, cgroups };
  }
  const sb = await prepareBwrapSandbox({
    bin: r.bin,
    workspaceRoot: opts.workspaceRoot,
    network: opts.network,
    path: opts.path ?? env.PATH ?? "/usr/bin:/bin",
    user,
    limits,
    cgroups,
    env,
  });
  opts.log.info(
    {
      agent: opts.agent,
      sandbox: "bwrap",
      version: r.version,
      network: sb.network,
      user: user?.uid ?? "self",
      exposed: sb.expose,
      limits,
      cgroups: cgroups ? `v${cgroups.version}` : "none",
    },
    "shell commands run in the bwrap sandbox",
  );
  return sb;
}
