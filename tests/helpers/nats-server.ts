/**
 * A real nats-server per test suite: its own random port and temp store, never
 * the system server on 4222. The binary comes from NATS_SERVER_BIN, else PATH,
 * else /usr/sbin/nats-server (Debian's 2.9.10). Only when no binary exists and
 * a container runtime answers does it fall back to @testcontainers/nats.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";

export interface NatsServerOptions {
  /** Reuse a store (e.g. to start a second server on a first one's data); default a new temp dir. */
  storeDir?: string;
  /** Default: a free random port. */
  port?: number;
  /** Extra nats.conf text (authorization, limits...); written to a file and passed with -c. */
  configText?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** How long to wait for the server and JetStream to answer. Default 20 s. */
  readyTimeoutMs?: number;
  /** false: a plain core-NATS server (to test "JetStream is not enabled" paths). Default true. */
  jetstream?: boolean;
}

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  /** Process id of the server (0 for a container). */
  pid: number;
  /** Set when the server requires them (the container fallback does). */
  user?: string;
  pass?: string;
  /** SIGTERM, wait for exit, remove the temp store. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit; the store stays for restart(). */
  kill(): Promise<void>;
  /** Start again on the same port and store (after kill() or while running). */
  restart(): Promise<void>;
}

export interface NatsClusterHandle {
  urls: string[];
  servers: NatsServerHandle[];
  stop(): Promise<void>;
}

const DEBIAN_BIN = "/usr/sbin/nats-server";
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A crashed test run must not leave servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** NATS_SERVER_BIN, else the first nats-server on PATH, else Debian's path, else null. */
export async function findNatsServerBinary(): Promise<string | null> {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) {
    if (await isExecutable(fromEnv)) return fromEnv;
    throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file`);
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "nats-server");
    if (await isExecutable(candidate)) return candidate;
  }
  return (await isExecutable(DEBIAN_BIN)) ? DEBIAN_BIN : null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve when the child exits (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Poll until a client connects and the JetStream API answers (for a cluster:
 * a meta leader exists); with `jetstream` false, until a client connects.
 */
async function waitForJetStream(
  url: string,
  timeoutMs: number,
  failed: () => string | null,
  auth: { user?: string; pass?: string } = {},
  jetstream = true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  while (Date.now() < deadline) {
    const why = failed();
    if (why) throw new Error(why);
    let nc: NatsConnection | null = null;
    try {
      nc = await connect({ servers: url, reconnect: false, timeout: 1000, ...auth });
      if (!jetstream) return;
      const jsm = await jetstreamManager(nc, { timeout: 1500 });
      await jsm.getAccountInfo();
      return;
    } catch (err) {
      lastErr = (err as Error).message;
    } finally {
      await nc?.close().catch(() => undefined);
    }
    await sleep(100);
  }
  throw new Error(`nats-server at ${url} did not become ready in ${timeoutMs} ms: ${lastErr}`);
}

interface SpawnPlan {
  bin: string;
  args: string[];
}

class LocalServer implements NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  pid = 0;
  private child: ChildProcess | null = null;
  private output = "";
  private readonly plan: SpawnPlan;
  private readonly ownedDirs: string[];
  private readonly readyTimeoutMs: number;
  private readonly jetstream: boolean;

  constructor(
    plan: SpawnPlan,
    port: number,
    storeDir: string,
    ownedDirs: string[],
    readyTimeoutMs: number,
    jetstream = true,
  ) {
    this.jetstream = jetstream;
    this.plan = plan;
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = storeDir;
    this.ownedDirs = ownedDirs;
    this.readyTimeoutMs = readyTimeoutMs;
  }

  /** Spawn without waiting for readiness (a cluster waits once all nodes run). */
  spawnProcess(): void {
    installExitHook();
    this.output = "";
    const child = spawn(this.plan.bin, this.plan.args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (b: Buffer) => {
      // Keep the tail only: enough to explain a failed start.
      this.output = (this.output + b.toString()).slice(-8000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    child.once("exit", () => live.delete(child));
    live.add(child);
    this.child = child;
    this.pid = child.pid ?? 0;
  }

  /** Why the process is not running, or null while it runs. */
  failure(): string | null {
    const c = this.child;
    if (!c) return "nats-server was not started";
    if (c.exitCode !== null || c.signalCode !== null) {
      return `nats-server exited (code ${c.exitCode}, signal ${c.signalCode}):\n${this.output}`;
    }
    return null;
  }

  async waitReady(): Promise<void> {
    await waitForJetStream(this.url, this.readyTimeoutMs, () => this.failure(), {}, this.jetstream);
  }

  async start(): Promise<void> {
    this.spawnProcess();
    try {
      await this.waitReady();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) c.kill(sig);
    await exited(c);
    this.child = null;
  }

  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  async terminate(): Promise<void> {
    const c = this.child;
    if (!c) return;
    // nats-server shuts JetStream down cleanly on SIGTERM; give it a few seconds.
    const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
    await this.signal("SIGTERM");
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.terminate();
    await Promise.all(
      this.ownedDirs.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })),
    );
  }

  async restart(): Promise<void> {
    await this.terminate();
    await this.start();
  }
}

/** Start one nats-server with JetStream on 127.0.0.1 and wait until JetStream answers. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = await findNatsServerBinary();
  if (!bin) return startContainerServer(opts);
  const port = opts.port ?? (await freePort());
  const owned: string[] = [];
  let storeDir = opts.storeDir;
  if (!storeDir) {
    storeDir = await mkdtemp(path.join(os.tmpdir(), "squad-nats-"));
    owned.push(storeDir);
  }
  const jetstream = opts.jetstream ?? true;
  const args = [
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    ...(jetstream ? ["-js", "-sd", storeDir] : []),
  ];
  if (opts.configText !== undefined) {
    const confDir = await mkdtemp(path.join(os.tmpdir(), "squad-nats-conf-"));
    owned.push(confDir);
    const conf = path.join(confDir, "nats.conf");
    await writeFile(conf, opts.configText);
    args.unshift("-c", conf);
  }
  args.push(...(opts.args ?? []));
  const server = new LocalServer(
    { bin, args },
    port,
    storeDir,
    owned,
    opts.readyTimeoutMs ?? 20_000,
    jetstream,
  );
  try {
    await server.start();
  } catch (err) {
    await Promise.all(owned.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })));
    throw err;
  }
  return server;
}

/**
 * A real cluster of n servers on 127.0.0.1: unique server_name, a cluster block
 * with routes to every node, own store dirs. Resolves once JetStream has a meta
 * leader and every node answers JetStream requests.
 */
export async function startNatsCluster(
  n = 3,
  opts: { readyTimeoutMs?: number } = {},
): Promise<NatsClusterHandle> {
  const bin = await findNatsServerBinary();
  if (!bin) {
    throw new Error(
      "startNatsCluster needs a nats-server binary (set NATS_SERVER_BIN or install nats-server); " +
        "the container fallback covers single servers only",
    );
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const root = await mkdtemp(path.join(os.tmpdir(), "squad-nats-cluster-"));
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const nodes: LocalServer[] = [];
  for (let i = 0; i < n; i++) {
    const storeDir = path.join(root, `n${i + 1}`);
    const conf = path.join(root, `n${i + 1}.conf`);
    await writeFile(
      conf,
      [
        `server_name: n${i + 1}`,
        `listen: 127.0.0.1:${ports[i]}`,
        `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 64MB, max_file_store: 256MB }`,
        `cluster {`,
        `  name: squad-test`,
        `  listen: 127.0.0.1:${routePorts[i]}`,
        `  routes: [${routes.join(", ")}]`,
        `}`,
        "",
      ].join("\n"),
    );
    nodes.push(
      new LocalServer({ bin, args: ["-c", conf] }, ports[i]!, storeDir, [], readyTimeoutMs),
    );
  }
  const stopAll = async () => {
    await Promise.all(nodes.map((s) => s.terminate()));
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    for (const s of nodes) s.spawnProcess();
    await Promise.all(nodes.map((s) => s.waitReady()));
  } catch (err) {
    await Promise.all(nodes.map((s) => s.kill()));
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
  return { urls: nodes.map((s) => s.url), servers: nodes, stop: stopAll };
}

/** Is a container runtime (Docker, Podman) reachable? */
async function containerRuntimeAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * Fallback for machines without a nats-server binary. NOT exercised on the
 * project's machines (they have Debian's binary and no container runtime), so
 * it is untested here. The store lives inside the container, so restart()
 * keeps it; the mapped port may change on restart, so `url` is re-read.
 */
async function startContainerServer(opts: NatsServerOptions): Promise<NatsServerHandle> {
  if (opts.configText !== undefined || opts.storeDir !== undefined || opts.port !== undefined) {
    throw new Error(
      "the container fallback supports no configText/storeDir/port; install nats-server",
    );
  }
  if (!(await containerRuntimeAnswers())) {
    throw new Error(
      "no nats-server binary found (NATS_SERVER_BIN, PATH, /usr/sbin/nats-server) and no container " +
        "runtime answers: install nats-server (apt-get install nats-server) or set NATS_SERVER_BIN",
    );
  }
  const { NatsContainer } = await import("@testcontainers/nats");
  const storeDir = "/data";
  let builder = new NatsContainer("nats:2.10-alpine").withJetStream().withArg("-sd", storeDir);
  for (const a of opts.args ?? []) builder = builder.withArg(a);
  const container = await builder.start();
  const conn = container.getConnectionOptions();
  const handle: NatsServerHandle = {
    url: "",
    port: 0,
    storeDir,
    pid: 0,
    user: conn.user,
    pass: conn.pass,
    stop: async () => {
      await container.stop();
    },
    kill: async () => {
      await container.stop({ timeout: 0, remove: false });
    },
    restart: async () => {
      await container.restart();
      refresh();
      await waitForJetStream(handle.url, opts.readyTimeoutMs ?? 30_000, () => null, conn);
    },
  };
  const refresh = () => {
    handle.port = container.getMappedPort(4222);
    handle.url = `nats://${container.getHost()}:${handle.port}`;
  };
  refresh();
  await waitForJetStream(handle.url, opts.readyTimeoutMs ?? 30_000, () => null, conn);
  return handle;
}
