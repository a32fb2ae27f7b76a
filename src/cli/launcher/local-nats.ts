/**
 * "Start NATS if none answers": the launcher's own nats-server child,
 * authenticated by default.
 *
 * Which server the swarm uses:
 * - The URL was given (`--nats`, NATS_URL) and a server answers there: use
 *   it, start nothing. It is the recorded server of this state directory, or
 *   one the user runs: connect with the credentials given (none when none),
 *   and warn when it accepts clients without authentication.
 * - The URL was given, nothing answers, and it names this machine: start
 *   nats-server on exactly that port (the URL the user wrote stays right).
 * - The URL was given and names another host: exit 3; we cannot start a
 *   server there.
 * - The URL is a comma-separated list (a cluster): use it when any of them
 *   answers, and give every child the whole list; never start a server.
 * - No URL was given: the server recorded in the state directory
 *   (`<state>/nats/server.json`) when it is still running, else a new one on
 *   4222 when free (so `swarm watch` in another terminal finds it), else on
 *   a free port. Never a server that merely answers on 4222: an unknown,
 *   perhaps unauthenticated one is not ours to use.
 * The server listens on 127.0.0.1 only, with JetStream, its store under
 * `<workspace>/.nats` (so missions survive a restart of the launcher), its
 * config in `<state>/nats/nats-server.conf` with the authorization block of
 * the swarm's identities (src/bus/nats-auth-block.ts), and runs supervised:
 * restarted on the same port, config and store if it dies. Without
 * authentication only when asked (`--insecure-nats`, SWARM_NATS_AUTH=none),
 * with a warning on every start.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import { Writable } from "node:stream";
import { nkeyAuthenticator } from "@nats-io/transport-node";
import { natsHostPort, natsServerInfo } from "../../bus/connect.ts";
import { ensureIdentities, readSeedFile } from "../../bus/identity-store.ts";
import {
  processAlive,
  readLocalServerRecord,
  removeLocalServerRecord,
  writeLocalServerRecord,
  type LocalServerRecord,
} from "../../bus/local-server-record.ts";
import { renderAuthorizationBlock } from "../../bus/nats-auth-block.ts";
import { natsStatePaths, seedFilePath } from "../../bus/state-dir.ts";
import { BadInputError, InfrastructureError } from "../../errors.ts";
import {
  DEBIAN_NATS_SERVER,
  NATS_INSTALL_HINT,
  findNatsServerBinary as findBinary,
} from "../../bus/nats-server-binary.ts";
import { freePort, waitForNats } from "../../bus/nats-server-process.ts";

export { DEBIAN_NATS_SERVER, NATS_INSTALL_HINT, freePort };
import { Supervisor, type SupervisorEvent } from "../supervisor.ts";
import { renderLocalNatsConfig } from "./local-nats-config.ts";
import type { SwarmCredentials } from "./swarm-credentials.ts";

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
  /** "started here", "recorded in <state>", "already running": for the launcher's line. */
  origin: string;
  /** Who connects with what (per-role identities, or the credential the user gave). */
  credentials: SwarmCredentials;
  /** To show on every start: an unauthenticated server, asked for or found. */
  warnings: string[];
}

export interface EnsureNatsOptions {
  /** `--nats` / NATS_URL, or the default. */
  url: string;
  /** Whether the user gave the URL (flag or environment). */
  explicit: boolean;
  /** `<workspace>/.nats` */
  storeDir: string;
  /** The swarm's state directory (identities, the local server's config and record). */
  stateDir: string;
  /** Every roster agent: each gets its worker identity in the server's authorization block. */
  agents: readonly string[];
  /** Run (or accept) NATS without authentication: `--insecure-nats` / SWARM_NATS_AUTH=none. */
  insecure: boolean;
  /** The user gave a credential (NATS_NKEY, NATS_CREDS, NATS_TOKEN, NATS_USER, user:pass@). */
  credentialGiven: boolean;
  /** The server's own output (a log file). */
  output: Writable;
  onEvent?: (e: SupervisorEvent) => void;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/** Use the server that answers at `url`, or start one (see the header for the rules). */
export async function ensureNats(opts: EnsureNatsOptions): Promise<NatsEndpoint> {
  const warnings: string[] = [];
  if (opts.insecure) warnings.push(INSECURE_WARNING);
  // A comma-separated list names a cluster's servers (as NATS_URL does for every client).
  const urls = opts.url
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  let target: { host: string; port: number };
  try {
    const targets = urls.map((u) => natsHostPort(u));
    if (!targets[0]) throw new Error("no URL");
    target = targets[0];
  } catch {
    throw new InfrastructureError(
      `NATS URL ${JSON.stringify(opts.url)} is not valid`,
      "use nats://host:port, or a comma-separated list of them for a cluster",
    );
  }
  if (urls.length > 1) return clusterEndpoint(opts, urls, warnings);
  const recorded = await liveRecordedServer(opts.stateDir);
  if (recorded && (!opts.explicit || samePort(recorded, opts.url, target))) {
    const credentials = await recordedCredentials(recorded, opts);
    if (recorded.auth === "none") warnings.push(unauthenticatedWarning(recorded.url));
    return {
      url: recorded.url,
      local: null,
      origin: `recorded in ${opts.stateDir}`,
      credentials,
      warnings: unique(warnings),
    };
  }
  if (opts.explicit || opts.insecure) {
    const info = await natsServerInfo(opts.url);
    if (info) {
      if (!info.auth_required) warnings.push(unauthenticatedWarning(opts.url));
      return {
        url: opts.url,
        local: null,
        origin: "already running",
        credentials: await givenOrIdentities(opts),
        warnings: unique(warnings),
      };
    }
  }
  if (opts.explicit && !LOCAL_HOSTS.has(target.host)) {
    throw new InfrastructureError(
      `NATS does not answer at ${opts.url}, and a server on another host cannot be started from here`,
      "start nats-server there, or unset NATS_URL/--nats to let the launcher start a local one",
    );
  }
  if (opts.credentialGiven && !opts.insecure) {
    throw new BadInputError(
      "a NATS credential is set (NATS_NKEY, NATS_CREDS, NATS_TOKEN, NATS_USER or user:pass@ in " +
        "the URL), but no server answers: the launcher's own server uses the swarm's generated " +
        "identities; unset the credential, or point NATS_URL at the server it belongs to",
    );
  }
  const bin = await findNatsServerBinary(opts.env ?? process.env);
  const port = opts.explicit || (await portIsFree(target.port)) ? target.port : await freePort();
  const local = await startLocalNats({
    bin,
    port,
    storeDir: opts.storeDir,
    stateDir: opts.stateDir,
    agents: opts.agents,
    insecure: opts.insecure,
    output: opts.output,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  });
  return {
    url: local.url,
    local,
    origin: "started here",
    credentials: opts.insecure
      ? { kind: "given" }
      : { kind: "identities", stateDir: opts.stateDir },
    warnings: unique(warnings),
  };
}

/**
 * A list of servers (a cluster): used when any of them answers, and handed
 * whole to every child, so that one restarted after a node died still
 * finds the others. A server is never started for a list.
 */
async function clusterEndpoint(
  opts: EnsureNatsOptions,
  urls: readonly string[],
  warnings: string[],
): Promise<NatsEndpoint> {
  for (const url of urls) {
    const info = await natsServerInfo(url);
    if (!info) continue;
    if (!info.auth_required) warnings.push(unauthenticatedWarning(url));
    return {
      url: urls.join(","),
      local: null,
      origin: `already running (${url} answered)`,
      credentials: await givenOrIdentities(opts),
      warnings: unique(warnings),
    };
  }
  throw new InfrastructureError(
    `none of the NATS servers ${urls.join(", ")} answers, and the launcher starts no server for a list`,
    "start the cluster, or give one URL (or none) to let the launcher start a local server",
  );
}

const INSECURE_WARNING =
  "NATS without authentication (asked for with --insecure-nats / SWARM_NATS_AUTH=none): any " +
  "process that reaches the server, a task with network access included, can read and forge " +
  "every event and delete the streams (docs/security.md)";

function unauthenticatedWarning(url: string): string {
  return (
    `the NATS server at ${url} accepts clients without authentication: any process that reaches ` +
    "it can read and forge every event and delete the streams; run it with the block of " +
    "`swarm nats-config` (docs/operations.md)"
  );
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** The recorded server of this state directory, when its process still runs and answers. */
export async function liveRecordedServer(stateDir: string): Promise<LocalServerRecord | null> {
  const rec = await readLocalServerRecord(stateDir);
  if (!rec || !processAlive(rec.pid)) return null;
  return (await natsServerInfo(rec.url)) ? rec : null;
}

function samePort(rec: LocalServerRecord, url: string, target: { host: string }): boolean {
  return LOCAL_HOSTS.has(target.host) && natsHostPort(url).port === rec.port;
}

/**
 * The recorded server's credentials; the roster may have grown since it
 * started: new identities are added to its config, which it reloads (SIGHUP).
 */
async function recordedCredentials(
  rec: LocalServerRecord,
  opts: EnsureNatsOptions,
): Promise<SwarmCredentials> {
  if (rec.auth === "none") return { kind: "given" };
  const registry = await ensureIdentities(opts.stateDir, opts.agents);
  const config = renderLocalNatsConfig({
    port: rec.port,
    storeDir: rec.store_dir,
    authorization: renderAuthorizationBlock(registry),
  });
  const old = await readFile(rec.config, "utf8").catch(() => null);
  if (old !== config) {
    await writeFile(rec.config, config, { mode: 0o600 });
    process.kill(rec.pid, "SIGHUP");
    // Reloaded once the newest identity may connect.
    const newest = registry.identities.at(-1)!;
    const { seed } = await readSeedFile(seedFilePath(opts.stateDir, newest.name));
    await waitForNats(rec.url, {
      timeoutMs: opts.readyTimeoutMs ?? 20_000,
      auth: { authenticator: nkeyAuthenticator(seed) },
      jetstream: false,
    });
  }
  return { kind: "identities", stateDir: opts.stateDir };
}

/**
 * A server the user runs: the credential given, else the state directory's
 * identities when it has them all (a server run with `swarm nats-config`'s
 * block), else none.
 */
async function givenOrIdentities(opts: EnsureNatsOptions): Promise<SwarmCredentials> {
  if (opts.credentialGiven || opts.insecure) return { kind: "given" };
  const rec = await readLocalServerRecord(opts.stateDir);
  const registryFile = natsStatePaths(opts.stateDir).registry;
  const have = await readFile(registryFile, "utf8").then(
    (t) => t,
    () => null,
  );
  if (!have || rec?.auth === "none") return { kind: "given" };
  const names = new Set(
    (JSON.parse(have) as { identities?: Array<{ name: string }> }).identities?.map((r) => r.name),
  );
  const all = ["orchestrator", "operator", "watcher", ...opts.agents.map((a) => `worker-${a}`)];
  return all.every((n) => names.has(n))
    ? { kind: "identities", stateDir: opts.stateDir }
    : { kind: "given" };
}

/** The binary to start a local server with (see src/bus/nats-server-binary.ts). */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return findBinary(env, "no NATS answers and");
}

export interface StartLocalNatsOptions {
  bin: string;
  port: number;
  storeDir: string;
  stateDir: string;
  agents: readonly string[];
  /** No authorization block (asked for explicitly). */
  insecure?: boolean;
  output: Writable;
  onEvent?: (e: SupervisorEvent) => void;
  readyTimeoutMs?: number;
}

/**
 * Start a supervised nats-server with JetStream on 127.0.0.1:`port`, with the
 * swarm's authorization block (identities generated on first start); resolves
 * once JetStream answers to the orchestrator's identity, and records it in the
 * state directory.
 */
export async function startLocalNats(opts: StartLocalNatsOptions): Promise<LocalNats> {
  await mkdir(opts.storeDir, { recursive: true });
  const url = `nats://127.0.0.1:${opts.port}`;
  const registry = opts.insecure ? null : await ensureIdentities(opts.stateDir, opts.agents);
  const paths = natsStatePaths(opts.stateDir);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(
    paths.serverConfig,
    renderLocalNatsConfig({
      port: opts.port,
      storeDir: opts.storeDir,
      authorization: registry ? renderAuthorizationBlock(registry) : null,
    }),
    { mode: 0o600 },
  );
  const readyAuth = registry
    ? {
        authenticator: nkeyAuthenticator(
          (await readSeedFile(seedFilePath(opts.stateDir, "orchestrator"))).seed,
        ),
      }
    : undefined;
  const record = (pid: number): LocalServerRecord => ({
    version: 1,
    url,
    port: opts.port,
    pid,
    config: paths.serverConfig,
    store_dir: opts.storeDir,
    auth: registry ? "nkey" : "none",
    started_at: new Date().toISOString(),
  });
  let ready = false;
  const tail = new TailWriter(opts.output);
  const sup = new Supervisor({ baseDelayMs: 500, maxDelayMs: 5000 });
  let pid: number | undefined;
  let exitedEarly: string | null = null;
  sup.on("event", (e) => {
    if (e.type === "started") {
      pid = e.pid;
      // A restart (new pid) is recorded again, so that others still find it ours.
      if (ready) void writeLocalServerRecord(opts.stateDir, record(e.pid)).catch(() => undefined);
    }
    if (e.type === "exited") {
      pid = undefined;
      exitedEarly ??= `code ${e.code ?? "-"}, signal ${e.signal ?? "-"}`;
    }
    opts.onEvent?.(e);
  });
  sup.start({
    name: "nats-server",
    command: opts.bin,
    args: ["-c", paths.serverConfig],
    output: tail,
  });
  const stop = async () => {
    const last = pid;
    await sup.stopAll(5000);
    if (last !== undefined)
      await removeLocalServerRecord(opts.stateDir, last).catch(() => undefined);
  };
  try {
    await waitForNats(url, {
      timeoutMs: opts.readyTimeoutMs ?? 20_000,
      failed: () => exitedEarly && `it exited at start (${exitedEarly})`,
      ...(readyAuth ? { auth: readyAuth } : {}),
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
  ready = true;
  if (pid !== undefined) await writeLocalServerRecord(opts.stateDir, record(pid));
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
