/**
 * The OS sandbox of shell commands: bubblewrap (`bwrap`, Debian's
 * `bubblewrap` package). A sandboxed command sees
 *
 * - its mission's workspace read-write, and nothing else writable but a
 *   private /tmp;
 * - the rest of the system read-only, minus what is hidden behind an empty
 *   tmpfs: the workspace root (other missions' workspaces and the reports),
 *   the worker user's home (keys, tokens, package-manager credentials), /run
 *   (sockets such as docker.sock) and the host's /tmp;
 * - its own PID namespace and /proc, so the worker process (and its
 *   environment, `/proc/$PPID/environ`) does not exist for it;
 * - no network (its own empty network namespace) unless the agent's policy
 *   says `network: true`;
 * - no capabilities (`--cap-drop ALL`): as root, bwrap would otherwise keep
 *   them, and CAP_SYS_ADMIN can remount `/` read-write.
 *
 * Nothing it starts outlives it: bwrap's PID 1 dies with the command and
 * the kernel then kills the whole namespace.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, realpath, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { BadInputError } from "../errors.ts";
import type { Logger } from "../log.ts";

export const SandboxMode = z.enum(["bwrap", "none"]);
export type SandboxMode = z.infer<typeof SandboxMode>;

/** How run_shell confines commands (absent: not at all). */
export interface ShellSandbox {
  kind: "bwrap";
  bin: string;
  /** Hidden; the command's own workspace, below it, is bound back read-write. */
  workspaceRoot: string;
  /** Other directories replaced by an empty tmpfs (existing, real paths). */
  hide: string[];
  /** Paths under a hidden directory bound back read-only (toolchains on PATH, resolv.conf). */
  expose: string[];
  network: boolean;
}

/** Is `p` equal to `dir` or inside it? (Both absolute and normalised.) */
export function isWithin(p: string, dir: string): boolean {
  if (dir === "/") return true;
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

const depth = (p: string) => p.split("/").filter(Boolean).length;

/**
 * bwrap's arguments for one command in `workspace` (a real path inside the
 * workspace root), up to and excluding the command itself (pure). Mount
 * order matters: parents before children, the workspace last.
 */
export function bwrapArgs(sb: ShellSandbox, workspace: string): string[] {
  const args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"];
  // A hidden directory that holds the workspace is fine: bwrap makes the mount points inside the tmpfs.
  const hide = [...new Set(sb.hide)]
    .filter((d) => d !== "/" && !isWithin(d, workspace))
    .sort((a, b) => depth(a) - depth(b));
  for (const d of hide) args.push("--tmpfs", d);
  for (const p of sb.expose) {
    if (!isWithin(p, sb.workspaceRoot)) args.push("--ro-bind-try", p, p);
  }
  args.push("--tmpfs", sb.workspaceRoot, "--bind", workspace, workspace);
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
  if (!sb.network) args.push("--unshare-net");
  args.push("--die-with-parent", "--cap-drop", "ALL", "--chdir", workspace);
  return args;
}

/** The full argv after the bwrap binary: sandbox, then `bash -c <script>`. */
export function bwrapCommand(sb: ShellSandbox, workspace: string, script: string): string[] {
  return [...bwrapArgs(sb, workspace), "--", "/bin/bash", "-c", script];
}

export type BwrapProbe =
  { ok: true; bin: string; version: string } | { ok: false; bin: string | null; reason: string };

const probes = new Map<string, Promise<BwrapProbe>>();

/**
 * Is bubblewrap usable here? Present, and a trivial command runs in exactly
 * the sandbox commands get (user namespaces may be disabled, a container may
 * forbid mounts). Probed once per binary per process.
 */
export function probeBwrap(bin?: string): Promise<BwrapProbe> {
  const key = bin ?? "";
  let p = probes.get(key);
  if (!p) {
    p = runProbe(bin);
    probes.set(key, p);
  }
  return p;
}

async function runProbe(explicit?: string): Promise<BwrapProbe> {
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
    const sb: ShellSandbox = {
      kind: "bwrap",
      bin,
      workspaceRoot: root,
      hide: await existingDirs(["/tmp", "/run"]),
      expose: [],
      network: false,
    };
    const r = await runBounded(bin, bwrapCommand(sb, workspace, "touch ok && test ! -w /usr"), {
      timeoutMs: 10_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    if (r.code !== 0) {
      return {
        ok: false,
        bin,
        reason: `a sandboxed \`true\` failed: ${r.output.trim() || r.ended}`,
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

/**
 * The sandbox for one agent's commands: what to hide on this machine, and
 * which toolchains on the commands' PATH must stay visible because they live
 * under a hidden directory (e.g. a Node installed in the home directory).
 */
export async function prepareBwrapSandbox(opts: {
  bin: string;
  workspaceRoot: string;
  network: boolean;
  /** The PATH commands get. */
  path: string;
  home?: string;
}): Promise<ShellSandbox> {
  await mkdir(opts.workspaceRoot, { recursive: true });
  const workspaceRoot = await realpath(opts.workspaceRoot);
  const hide = await existingDirs(["/tmp", "/run", "/var/run", opts.home ?? os.homedir()]);
  const hiddenBy = (p: string) => hide.some((d) => d !== "/" && isWithin(p, d));
  const expose: string[] = [];
  for (const entry of opts.path.split(":")) {
    if (!path.isAbsolute(entry)) continue;
    const real = await realpath(entry).catch(() => null);
    if (!real || !hiddenBy(real) || isWithin(real, workspaceRoot)) continue;
    // .../bin of a toolchain: its lib/ holds what the binaries load, so the prefix is bound.
    expose.push(path.basename(real) === "bin" ? path.dirname(real) : real);
  }
  if (opts.network) {
    const resolv = await realpath("/etc/resolv.conf").catch(() => null);
    if (resolv && hiddenBy(resolv)) expose.push(resolv);
  }
  return {
    kind: "bwrap",
    bin: opts.bin,
    workspaceRoot,
    hide,
    expose: [...new Set(expose)].sort((a, b) => depth(a) - depth(b)),
    network: opts.network,
  };
}

async function existingDirs(dirs: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const d of dirs) {
    if (!d || !path.isAbsolute(d)) continue;
    const real = await realpath(d).catch(() => null);
    if (!real || real === "/") continue;
    const s = await stat(real).catch(() => null);
    if (s?.isDirectory()) out.add(real);
  }
  return [...out];
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
 * The sandbox of one agent's commands, or undefined for none; probes bwrap
 * (once per process). Asked-for bwrap that can't work is a BadInputError
 * (the worker refuses to start); an unasked fallback to none is logged
 * loudly, with what it means.
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
  /** PATH of the commands (toolchains under hidden directories stay visible). */
  path?: string;
  bwrapBin?: string;
}): Promise<ShellSandbox | undefined> {
  const probe = await probeBwrap(opts.bwrapBin);
  const r = resolveSandbox(opts.requested, probe);
  if ("error" in r) throw sandboxUnavailable(opts.agent, opts.requestedBy, r.error);
  if (r.mode === "none") {
    if (r.requested === "none") {
      opts.log.warn(
        { agent: opts.agent, sandbox: "none" },
        `sandbox: none (${opts.requestedBy}): shell commands run unconfined as this worker's user`,
      );
    } else {
      opts.log.error(
        { agent: opts.agent, sandbox: "none", reason: r.reason },
        "NO SANDBOX: bubblewrap is not usable here, so shell commands run unconfined as this worker's " +
          "user: they can write anywhere that user can, read other missions' workspaces and open network " +
          "connections. Install bubblewrap (apt-get install bubblewrap), or set sandbox: none in the roster " +
          "(or SWARM_SANDBOX=none) to accept this explicitly.",
      );
    }
    return undefined;
  }
  const sb = await prepareBwrapSandbox({
    bin: r.bin,
    workspaceRoot: opts.workspaceRoot,
    network: opts.network,
    path: opts.path ?? process.env.PATH ?? "/usr/bin:/bin",
  });
  opts.log.info(
    {
      agent: opts.agent,
      sandbox: "bwrap",
      version: r.version,
      network: sb.network,
      hidden: sb.hide,
    },
    "shell commands run in the bwrap sandbox",
  );
  return sb;
}
