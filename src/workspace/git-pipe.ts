/**
 * A long-lived git process that answers requests written to its stdin, in
 * order (`cat-file --batch-command`, `update-ref --stdin`, `hash-object
 * --stdin-paths`): on a busy machine a git spawn costs 5-15 ms, a request to
 * a running process a fraction of one. Same isolation as every internal git
 * call (git-command.ts).
 *
 * Lifetime: started by the first request; ended by close() (before its
 * repository is removed), after `idleMs` without a request, or when this
 * process exits (git reads EOF on its stdin). It never keeps this process
 * alive. A git that dies (or a request git refuses, which ends it) fails the
 * requests waiting for it with a GitError; the next request starts a new one.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { GitError, gitInvocation, type GitOptions } from "./git-command.ts";

/** Reads one answer from the start of `buf`: the value and the bytes it used, or null: more is needed. */
export type AnswerReader<T> = (buf: Buffer) => { value: T; used: number } | null;

interface Waiting {
  read: AnswerReader<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  waiting: Waiting[];
  buf: Buffer;
  stderr: string;
  exited: Promise<void>;
}

export class GitPipe {
  readonly #args: readonly string[];
  readonly #opts: GitOptions;
  readonly #idleMs: number;
  #running: Running | null = null;
  #idle: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(args: readonly string[], opts: GitOptions, idleMs = 30_000) {
    this.#args = args;
    this.#opts = opts;
    this.#idleMs = idleMs;
  }

  /** Write `input`, then resolve with what `read` parses of git's answer. */
  request<T>(input: string | Uint8Array, read: AnswerReader<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error(`git ${this.#args[0]}: pipe closed`));
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = null;
    const r = this.#running ?? this.#start();
    return new Promise<T>((resolve, reject) => {
      r.waiting.push({ read, resolve: resolve as (v: unknown) => void, reject });
      r.child.stdin.write(input);
    });
  }

  /** End git (EOF on its stdin) and wait for it to exit; later requests fail. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    const r = this.#running;
    if (!r) return;
    this.#running = null;
    r.child.stdin.end();
    await r.exited;
  }

  #start(): Running {
    const how = gitInvocation(this.#args, this.#opts);
    const child = spawn("git", how.args, { cwd: how.cwd, env: how.env, stdio: "pipe" });
    let exitedResolve!: () => void;
    const r: Running = {
      child,
      waiting: [],
      buf: Buffer.alloc(0),
      stderr: "",
      exited: new Promise<void>((res) => (exitedResolve = res)),
    };
    this.#running = r;
    // Never what keeps this process running.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) {
      (s as unknown as { unref?: () => void }).unref?.();
    }
    child.stdout.on("data", (chunk: Buffer) => {
      r.buf = r.buf.length ? Buffer.concat([r.buf, chunk]) : chunk;
      this.#deliver(r);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      r.stderr = (r.stderr + chunk.toString()).slice(-4000);
    });
    // A write after git died (EPIPE): the exit below fails the waiting requests.
    child.stdin.on("error", () => undefined);
    const ended = (code: number | null, err?: Error) => {
      if (this.#running === r) this.#running = null;
      const failure = new GitError(
        this.#args,
        code ?? undefined,
        r.stderr || err?.message || "git exited",
      );
      for (const w of r.waiting.splice(0)) w.reject(failure);
      exitedResolve();
    };
    child.on("error", (err) => ended(null, err));
    child.on("close", (code) => ended(code));
    return r;
  }

  #deliver(r: Running): void {
    while (r.waiting.length > 0) {
      let answer;
      try {
        answer = r.waiting[0]!.read(r.buf);
      } catch (err) {
        // An answer we cannot read: this process's stream is lost, start afresh.
        for (const w of r.waiting.splice(0)) w.reject(err as Error);
        r.child.kill();
        return;
      }
      if (!answer) return;
      r.buf = r.buf.subarray(answer.used);
      r.waiting.shift()!.resolve(answer.value);
    }
    if (r.waiting.length === 0 && !this.#closed) {
      this.#idle = setTimeout(() => {
        this.#idle = null;
        if (this.#running !== r || r.waiting.length > 0) return;
        // The next request starts a new git: this one is left to exit.
        this.#running = null;
        r.child.stdin.end();
      }, this.#idleMs);
      this.#idle.unref();
    }
  }
}

/** One line (without its newline), or null until it is complete. */
export function readLine(buf: Buffer): { value: string; used: number } | null {
  const nl = buf.indexOf(10);
  if (nl < 0) return null;
  return { value: buf.subarray(0, nl).toString(), used: nl + 1 };
}
