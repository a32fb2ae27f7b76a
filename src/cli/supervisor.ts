import { EventEmitter } from "node:events";
import { execa, type ResultPromise } from "execa";
import type { Writable } from "node:stream";
import { backoffDelay } from "../backoff.ts";

export interface ChildSpec {
  /** Unique, shown in logs and progress: e.g. `builder-2`. */
  name: string;
  command: string;
  args: string[];
  /** Added to the launcher's environment; an undefined value removes the variable. */
  env?: Record<string, string | undefined>;
  /** Where the child's stdout and stderr go; default: inherit. */
  output?: Writable;
}

export type SupervisorEvent =
  | { type: "started"; name: string; pid: number; restarts: number }
  | { type: "exited"; name: string; pid: number; code: number | null; signal: string | null }
  | { type: "restarting"; name: string; delayMs: number; restarts: number }
  /** The child crashed `restarts` times in a row soon after starting: no more restarts. */
  | { type: "gave_up"; name: string; restarts: number; code: number | null; signal: string | null };

export interface SupervisorOptions {
  /** First restart delay; doubled per crash in a row. Default 250 ms. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A child that ran this long before dying starts its backoff over. Default 30 s. */
  stableAfterMs?: number;
  /** Crashes in a row (each before `stableAfterMs`) after which it is not restarted. Default: never give up. */
  maxQuickRestarts?: number;
}

interface Supervised {
  spec: ChildSpec;
  child: ResultPromise | null;
  /** Restarts so far (shown); `streak` drives the backoff and the give-up rule. */
  restarts: number;
  streak: number;
  timer: NodeJS.Timeout | null;
  exited: Promise<void>;
}

/**
 * Keeps child processes running: a child that dies (by crash or SIGKILL) is
 * restarted with exponential backoff, and every start, exit and restart is
 * an event the caller can show. A clean exit 0 is not restarted.
 *
 * Each child runs in its own process group, so a Ctrl-C in the terminal
 * reaches only the parent, which decides the order of shutdown (e.g. cancel
 * the mission first). Children are still killed when the parent exits.
 * Stopping sends SIGTERM to the child itself (workers drain and let their
 * shell steps finish), then SIGKILL to its whole group after a grace period.
 */
export class Supervisor extends EventEmitter<{ event: [SupervisorEvent] }> {
  private readonly children = new Map<string, Supervised>();
  private stopping = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly stableAfterMs: number;
  private readonly maxQuickRestarts: number;

  constructor(opts: SupervisorOptions = {}) {
    super();
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.stableAfterMs = opts.stableAfterMs ?? 30_000;
    this.maxQuickRestarts = opts.maxQuickRestarts ?? Number.POSITIVE_INFINITY;
  }

  start(spec: ChildSpec): void {
    if (this.stopping) throw new Error(`supervisor is stopping; cannot start ${spec.name}`);
    if (this.children.has(spec.name)) throw new Error(`child ${spec.name} already supervised`);
    const s: Supervised = {
      spec,
      child: null,
      restarts: 0,
      streak: 0,
      timer: null,
      exited: Promise.resolve(),
    };
    this.children.set(spec.name, s);
    this.spawn(s);
  }

  /** Current process id of each child (undefined while it is down). */
  pids(): Array<{ name: string; pid: number | undefined }> {
    return [...this.children.values()].map((s) => ({ name: s.spec.name, pid: s.child?.pid }));
  }

  private spawn(s: Supervised): void {
    const { spec } = s;
    const startedAt = Date.now();
    const child = execa(spec.command, spec.args, {
      env: spec.env,
      extendEnv: true,
      reject: false,
      stdin: "ignore",
      stdout: spec.output ? "pipe" : "inherit",
      stderr: spec.output ? "pipe" : "inherit",
      // Own process group (see above); `cleanup` still kills it when we exit.
      killDescendants: true,
      cleanup: true,
      forceKillAfterDelay: false,
      buffer: false,
    });
    if (spec.output) {
      child.stdout?.pipe(spec.output, { end: false });
      child.stderr?.pipe(spec.output, { end: false });
    }
    s.child = child;
    const pid = child.pid ?? -1;
    this.emit("event", { type: "started", name: spec.name, pid, restarts: s.restarts });
    s.exited = child.then((r) => {
      s.child = null;
      const code = r.exitCode ?? null;
      const signal = r.signal ?? null;
      this.emit("event", { type: "exited", name: spec.name, pid, code, signal });
      if (this.stopping || code === 0) return;
      if (Date.now() - startedAt >= this.stableAfterMs) s.streak = 0;
      if (s.streak >= this.maxQuickRestarts) {
        this.emit("event", {
          type: "gave_up",
          name: spec.name,
          restarts: s.restarts,
          code,
          signal,
        });
        return;
      }
      const delayMs = backoffDelay(Math.min(s.streak, 8) + 1, this.baseDelayMs, this.maxDelayMs);
      s.restarts++;
      s.streak++;
      this.emit("event", { type: "restarting", name: spec.name, delayMs, restarts: s.restarts });
      s.timer = setTimeout(() => {
        s.timer = null;
        if (!this.stopping) this.spawn(s);
      }, delayMs);
    });
  }

  /** SIGTERM every child, SIGKILL (its whole group) those still alive after `graceMs`. */
  async stopAll(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    const all = [...this.children.values()];
    for (const s of all) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      const pid = s.child?.pid;
      if (pid !== undefined) signalPid(pid, "SIGTERM");
    }
    const killer = setTimeout(() => {
      for (const s of all) s.child?.kill("SIGKILL");
    }, graceMs);
    await Promise.all(all.map((s) => s.exited));
    clearTimeout(killer);
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
