/**
 * The processes a chaos run starts and the ones it kills: spawning with the
 * output in a log file, reading the process tree from /proc (the launcher's
 * replicas are its children, each in its own process group), and making sure
 * nothing a run started outlives it, even when the run itself is interrupted.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export const CLI_ENTRY = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
/** What the launcher runs its children from while the build matches the sources (src/client/compiled.ts). */
export const COMPILED_CLI_ENTRY = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** One-letter state from /proc/<pid>/stat (R, S, D, Z...). */
  state: string;
  argv: string[];
}

/** Every process of this machine (Linux /proc); unreadable entries are skipped. */
export async function listProcesses(): Promise<ProcInfo[]> {
  const entries = await readdir("/proc");
  const infos = await Promise.all(
    entries.filter((e) => /^\d+$/.test(e)).map((e) => readProc(Number(e))),
  );
  return infos.filter((p): p is ProcInfo => p !== null);
}

export async function readProc(pid: number): Promise<ProcInfo | null> {
  try {
    const [stat, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/cmdline`, "utf8"),
    ]);
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      pid,
      ppid: Number(rest[1]),
      state: rest[0] ?? "?",
      argv: cmdline.split("\0").filter(Boolean),
    };
  } catch {
    return null;
  }
}

/** The processes below `root` (children, grandchildren...), not `root` itself. */
export async function descendantsOf(root: number): Promise<ProcInfo[]> {
  const all = await listProcesses();
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const walk = (pid: number) => {
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  for (const p of out) remember(p.pid, p.argv);
  return out;
}

/** Alive and not a zombie waiting to be reaped. */
export async function isRunning(pid: number): Promise<boolean> {
  const p = await readProc(pid);
  return p !== null && p.state !== "Z" && p.state !== "X";
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the exit hook

/**
 * Every pid a run started or saw below one it started, with its command
 * line: killed if this process exits early, but only while the pid still
 * runs the same command (a pid can be reused by someone else's process).
 */
const known = new Map<number, string>();
let hooked = false;

/** Kill `pid` if this process exits before the run forgets it (see above). */
export function remember(pid: number, argv: readonly string[]): void {
  known.set(pid, argv.join("\0"));
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const [p, cmdline] of known) {
      let now: string;
      try {
        // Synchronous on purpose: nothing async runs in an exit hook.
        now = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean).join("\0");
      } catch {
        continue;
      }
      if (now === cmdline) signal(p, "SIGKILL");
    }
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export function forget(pid: number): void {
  known.delete(pid);
}

// ---------------------------------------------------------------- spawning

export interface Spawned {
  pid: number;
  child: ChildProcess;
  /** Everything on stdout so far (kept in memory: the launcher's one JSON line). */
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Is it still running? */
  running(): boolean;
}

/** Spawn with stderr (and stdout, copied) appended to `logFile`. */
export function spawnLogged(
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; logFile: string; cwd?: string },
): Spawned {
  const log = createWriteStream(opts.logFile, { flags: "a" });
  log.on("error", () => undefined);
  const child = spawn(command, args, {
    env: opts.env,
    cwd: opts.cwd ?? REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  remember(child.pid, [command, ...args]);
  let out = "";
  let done = false;
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    log.write(d);
  });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("error", () => undefined);
    child.on("exit", (code, sig) => {
      done = true;
      forget(child.pid!);
      // Let the pipes drain into the log before it is closed.
      setTimeout(() => log.end(), 200);
      resolve({ code, signal: sig });
    });
  });
  return { pid: child.pid, child, stdout: () => out, exited, running: () => !done };
}

/** `node src/cli/main.ts <args>`: the swarm CLI, exactly as a user runs it. */
export function spawnSwarm(
  args: string[],
  opts: { env: NodeJS.ProcessEnv; logFile: string; nodeArgs?: string[] },
): Spawned {
  return spawnLogged(process.execPath, [...(opts.nodeArgs ?? []), CLI_ENTRY, ...args], opts);
}

/**
 * Stop a process and everything below it: SIGTERM to the root, then after
 * `graceMs` SIGKILL to whatever of the tree is still there.
 */
export async function stopTree(root: Spawned, graceMs = 10_000): Promise<void> {
  const tree = await descendantsOf(root.pid).catch(() => []);
  if (root.running()) signal(root.pid, "SIGTERM");
  await within(root.exited, graceMs);
  if (root.running()) signal(root.pid, "SIGKILL");
  await root.exited;
  // Children the root did not take down with it (SIGKILL never lets it).
  const again = await descendantsOf(root.pid).catch(() => []);
  for (const p of [...tree, ...again]) {
    await killIfSame(p, "SIGKILL");
    forget(p.pid);
  }
}

/** Signal `p` only if its pid still runs the same command (pids are reused). */
export async function killIfSame(p: ProcInfo, sig: NodeJS.Signals): Promise<boolean> {
  const now = await readProc(p.pid);
  if (!now || now.state === "Z" || now.argv.join("\0") !== p.argv.join("\0")) return false;
  return signal(p.pid, sig);
}

/** `p`, or null once `ms` have passed (the timer does not outlive the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
