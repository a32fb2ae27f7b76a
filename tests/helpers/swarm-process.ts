/**
 * Spawning the real `swarm` CLI in tests: `spawnSwarm` for long-running
 * processes (orchestrator, workers, deploy) and `runSwarm` for commands that
 * end. Every spawned process is killed when the test process exits, and
 * `killAllSwarms()` belongs in afterEach/afterAll.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
export const CLI_ENTRY = path.join(REPO_ROOT, "src/cli/main.ts");

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Environment for a swarm process against a test server and workspace. */
export function swarmEnv(
  natsUrl: string,
  workspace: string,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NATS_URL: natsUrl,
    SWARM_WORKSPACE: workspace,
    // Credentials and the local server's record stay with the test's own workspace.
    SWARM_STATE_DIR: path.join(workspace, ".state"),
    SWARM_LOG_FORMAT: "json",
    SWARM_LOG_LEVEL: process.env.SWARM_LOG_LEVEL ?? "info",
    ...extra,
  };
}

export interface SwarmProcess {
  child: ChildProcess;
  pid: number;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far (pino JSON logs). */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout+stderr match; rejects after timeoutMs with the output so far. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

function closed(stream: NodeJS.ReadableStream & { closed?: boolean }): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once("close", () => resolve()));
}

export function spawnSwarm(
  args: string[],
  env: NodeJS.ProcessEnv,
  /** `stdin`: text written to the child's stdin, which is then closed (else stdin is /dev/null). */
  opts: { cwd?: string; command?: string; stdin?: string } = {},
): SwarmProcess {
  const command = opts.command ?? process.execPath;
  const argv = opts.command ? args : [CLI_ENTRY, ...args];
  const child = spawn(command, argv, {
    env,
    cwd: opts.cwd ?? REPO_ROOT,
    stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  live.add(child);
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  const poke = () => waiters.splice(0).forEach((w) => w());
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    poke();
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    poke();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      // "exit" can come before the last output: wait for both pipes to close (a grandchild
      // that inherited them may hold them open: not longer than 2 s).
      void Promise.race([
        Promise.all([closed(child.stdout!), closed(child.stderr!)]),
        sleep(2000),
      ]).then(() => {
        resolve({ code, signal });
        poke();
      });
    }),
  );
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = "SIGTERM") => {
      child.kill(signal);
    },
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `timed out waiting for ${pattern}\n--- stdout\n${out.slice(-3000)}\n--- stderr\n${err.slice(-3000)}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (pattern.test(out) || pattern.test(err)) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Runs a command to its end; resolves with its exit code and output. */
export async function runSwarm(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { cwd?: string; command?: string; timeoutMs?: number; stdin?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnSwarm(args, env, opts);
  const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** SIGKILL every process spawned by this test file that is still alive. */
export async function killAllSwarms(): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill("SIGKILL");
  await Promise.all(
    all.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once("exit", r)))),
  );
}
