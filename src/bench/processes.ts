/**
 * The real swarm processes a benchmark runs (`node src/cli/main.ts worker ...`,
 * `... orchestrator`), their logs (to files, so that reading them costs the
 * measuring process nothing), their resident memory, and their end: nothing
 * a benchmark starts outlives it, even when the benchmark is interrupted.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { open, readdir, readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { selfCommand } from "../client/self-command.ts";

export const CLI_ENTRY = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const live = new Set<ChildProcess>();
let hooked = false;

/** Registers a child to be killed (SIGKILL) if this process exits or is interrupted. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const c of live) {
      for (const pid of descendantsSync(c.pid)) tryKill(pid, "SIGKILL");
      tryKill(c.pid, "SIGKILL");
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

function tryKill(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

// The exit hook must be synchronous; only it uses this (a tree of a few processes).
let lastTree = new Map<number, number[]>();
function descendantsSync(pid: number | undefined): number[] {
  if (!pid) return [];
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of lastTree.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Parent → children of every process, from /proc/<pid>/stat. */
async function processTree(): Promise<Map<number, number[]>> {
  const tree = new Map<number, number[]>();
  const entries = await readdir("/proc").catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        const stat = await readFile(`/proc/${e}/stat`, "utf8").catch(() => null);
        if (!stat) return;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = tree.get(ppid) ?? [];
        list.push(Number(e));
        tree.set(ppid, list);
      }),
  );
  lastTree = tree;
  return tree;
}

/** Every process below `pid` (children, grandchildren...). */
export async function descendants(pid: number): Promise<number[]> {
  const tree = await processTree();
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of tree.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Resident memory of a process in MB (VmRSS in /proc/<pid>/status), or null once it is gone. */
export async function residentMb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  const m = status ? /^VmRSS:\s+(\d+)\s+kB/m.exec(status) : null;
  return m ? Number(m[1]) / 1024 : null;
}

/** Peak resident memory of a process in MB (VmHWM), or null once it is gone. */
export async function peakResidentMb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  const m = status ? /^VmHWM:\s+(\d+)\s+kB/m.exec(status) : null;
  return m ? Number(m[1]) / 1024 : null;
}

export interface SwarmProcess {
  pid: number;
  logPath: string;
  child: ChildProcess;
  /** Resolves when the log file matches; rejects on exit or after timeoutMs with the log's tail. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  logTail(chars?: number): Promise<string>;
  /** SIGTERM (the process drains), then SIGKILL to it and all its descendants after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `node src/cli/main.ts <args>` (or its build, see selfCommand) with stdout and stderr to `logPath`. */
export async function spawnSwarm(
  args: string[],
  env: NodeJS.ProcessEnv,
  logPath: string,
  nodeArgs: string[] = [],
  /** Another script than the CLI (a benchmark's own helper process). */
  script?: string,
): Promise<SwarmProcess> {
  const log = await open(logPath, "a");
  // As the launcher runs them (compiled when dist/ is fresh); profiled runs keep
  // the sources so that profiles name src/*.ts.
  const entry = script ?? (nodeArgs.length ? CLI_ENTRY : (await selfCommand()).args[0]!);
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    env,
    cwd: REPO_ROOT,
    stdio: ["ignore", log.fd, log.fd],
  });
  await log.close();
  trackChild(child);
  const exit = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const logTail = async (chars = 3000) =>
    (await readFile(logPath, "utf8").catch(() => "")).slice(-chars);

  return {
    pid: child.pid ?? 0,
    logPath,
    child,
    logTail,
    async waitForLog(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const text = await readFile(logPath, "utf8").catch(() => "");
        if (pattern.test(text)) return;
        if (gone()) {
          throw new Error(
            `swarm ${args[0]} exited (code ${child.exitCode}) before ${pattern}:\n${text.slice(-3000)}`,
          );
        }
        await sleep(50);
      }
      throw new Error(
        `timed out waiting for ${pattern} from swarm ${args[0]}:\n${await logTail()}`,
      );
    },
    async stop(graceMs = 15_000) {
      if (gone()) return;
      const below = await descendants(child.pid ?? 0);
      child.kill("SIGTERM");
      const grace = new AbortController();
      await Promise.race([
        exit,
        sleep(graceMs, undefined, { signal: grace.signal }).catch(() => {}),
      ]);
      grace.abort(); // a pending grace timer would keep this process alive
      for (const pid of [child.pid, ...below]) tryKill(pid, "SIGKILL");
      await exit;
    },
  };
}

/**
 * CPU time a process has used, in seconds: its own (user + system) and that of
 * its children it has waited for (a worker's shell steps), from /proc/<pid>/stat.
 */
export async function cpuSeconds(pid: number): Promise<{ own: number; children: number } | null> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  if (!stat) return null;
  // Fields after "(comm)": state is field 3; utime, stime, cutime, cstime are 14-17.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const tick = CLOCK_TICKS_PER_SECOND;
  const at = (field: number) => Number(f[field - 3] ?? 0) / tick;
  return { own: at(14) + at(15), children: at(16) + at(17) };
}

/** USER_HZ: 100 on every Linux that matters (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS_PER_SECOND = 100;
