/**
 * "Start NATS if none answers": the launcher's own nats-server child.
 *
 * Which server the swarm uses:
 * - A server answers at the URL (`--nats`, NATS_URL, else the default
 *   nats://127.0.0.1:4222): use it, start nothing.
 * - The URL was given and names this machine: start nats-server on exactly
 *   that port, so the URL the user wrote (and other terminals use) is right.
 * - The URL was given and names another host: exit 3; we cannot start a
 *   server there.
 * - No URL was given: start on the default port 4222 when it is free (so
 *   `swarm watch` in another terminal finds it without settings), else on a
 *   free port; the URL is shown either way.
 * The server listens on 127.0.0.1 only, with JetStream, its store under
 * `<workspace>/.nats` (so missions survive a restart of the launcher), and
 * runs supervised: restarted on the same port and store if it dies.
 */
import { mkdir } from "node:fs/promises";
import net from "node:net";
import { Writable } from "node:stream";
import { natsAnswers, natsHostPort } from "../../bus/index.ts";
import { InfrastructureError } from "../../errors.ts";
import {
  DEBIAN_NATS_SERVER,
  NATS_INSTALL_HINT,
  findNatsServerBinary as findBinary,
} from "../../bus/nats-server-binary.ts";
import { freePort, waitForNats } from "../../bus/nats-server-process.ts";

export { DEBIAN_NATS_SERVER, NATS_INSTALL_HINT, freePort };
import { Supervisor, type SupervisorEvent } from "../supervisor.ts";

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"]);

export interface LocalNats {
  url: string;
  port: number;
  bin: string;
  storeDir: string;
  /** Current process id (it may have been restarted). */
  pid(): number | undefined;
  /** SIGTERM (JetStream flushes its store), SIGKILL after a few seconds. */
  stop(): Promise<void>;
}

export interface NatsEndpoint {
  /** What every child and the launcher connect to. */
  url: string;
  /** The server we started, or null when one answered already. */
  local: LocalNats | null;
}

export interface EnsureNatsOptions {
  /** `--nats` / NATS_URL, or the default. */
  url: string;
  /** Whether the user gave the URL (flag or environment). */
  explicit: boolean;
  /** `<workspace>/.nats` */
  storeDir: string;
  /** The server's own output (a log file). */
  output: Writable;
  onEvent?: (e: SupervisorEvent) => void;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/** Use the server that answers at `url`, or start one (see the header for the rules). */
export async function ensureNats(opts: EnsureNatsOptions): Promise<NatsEndpoint> {
  if (await natsAnswers(opts.url)) return { url: opts.url, local: null };
  let target: { host: string; port: number };
  try {
    target = natsHostPort(opts.url);
  } catch {
    throw new InfrastructureError(
      `NATS URL ${JSON.stringify(opts.url)} is not valid`,
      "use nats://host:port",
    );
  }
  if (opts.explicit && !LOCAL_HOSTS.has(target.host)) {
    throw new InfrastructureError(
      `NATS does not answer at ${opts.url}, and a server on another host cannot be started from here`,
      "start nats-server there, or unset NATS_URL/--nats to let the launcher start a local one",
    );
  }
  const bin = await findNatsServerBinary(opts.env ?? process.env);
  const port = opts.explicit || (await portIsFree(target.port)) ? target.port : await freePort();
  const local = await startLocalNats({
    bin,
    port,
    storeDir: opts.storeDir,
    output: opts.output,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  });
  return { url: local.url, local };
}

/** The binary to start a local server with (see src/bus/nats-server-binary.ts). */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return findBinary(env, "no NATS answers and");
}

export interface StartLocalNatsOptions {
  bin: string;
  port: number;
  storeDir: string;
  output: Writable;
  onEvent?: (e: SupervisorEvent) => void;
  readyTimeoutMs?: number;
}

/** Start a supervised nats-server with JetStream on 127.0.0.1:`port`; resolves once JetStream answers. */
export async function startLocalNats(opts: StartLocalNatsOptions): Promise<LocalNats> {
  await mkdir(opts.storeDir, { recursive: true });
  const url = `nats://127.0.0.1:${opts.port}`;
  const tail = new TailWriter(opts.output);
  const sup = new Supervisor({ baseDelayMs: 500, maxDelayMs: 5000 });
  let pid: number | undefined;
  let exitedEarly: string | null = null;
  sup.on("event", (e) => {
    if (e.type === "started") pid = e.pid;
    if (e.type === "exited") {
      pid = undefined;
      exitedEarly ??= `code ${e.code ?? "-"}, signal ${e.signal ?? "-"}`;
    }
    opts.onEvent?.(e);
  });
  sup.start({
    name: "nats-server",
    command: opts.bin,
    args: ["-a", "127.0.0.1", "-p", String(opts.port), "-js", "-sd", opts.storeDir],
    output: tail,
  });
  const stop = async () => {
    await sup.stopAll(5000);
  };
  try {
    await waitForNats(url, {
      timeoutMs: opts.readyTimeoutMs ?? 20_000,
      failed: () => exitedEarly && `it exited at start (${exitedEarly})`,
    });
  } catch (err) {
    await stop();
    throw new InfrastructureError(
      `could not start nats-server (${opts.bin}) on port ${opts.port}: ${(err as Error).message}` +
        (tail.text() ? `\n${tail.text().trimEnd()}` : ""),
      NATS_INSTALL_HINT,
      { cause: err },
    );
  }
  // From here on a crash is the supervisor's business (restarted on the same port and store).
  exitedEarly = null;
  return { url, port: opts.port, bin: opts.bin, storeDir: opts.storeDir, pid: () => pid, stop };
}

/** Can we listen on 127.0.0.1:`port` right now? */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Passes output on and keeps its last few KB, to explain a failed start. */
class TailWriter extends Writable {
  private readonly target: Writable;
  private buf = "";

  constructor(target: Writable) {
    super();
    this.target = target;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.buf = (this.buf + chunk.toString()).slice(-4000);
    // The log may be closed while the last lines of a stopping server are still queued here.
    if (this.target.writableEnded || this.target.destroyed) cb();
    else this.target.write(chunk, () => cb()); // a failing log file must not stop the server
  }

  text(): string {
    return this.buf;
  }
}
