/**
 * Private nats-server processes on 127.0.0.1: one server or a small cluster,
 * each on random ports with its own store, never the system server on 4222.
 * The benchmarks, the chaos runs and the test suite start theirs here; each
 * can be SIGKILLed and started again on the same port and store (the "NATS
 * restart" the chaos scenarios and tests inject).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  connect,
  type Authenticator,
  type NatsConnection,
  type TlsOptions,
} from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { findNatsServerBinary } from "./nats-server-binary.ts";

/** Told of every process started, so its owner can kill it if the owner dies. */
export type OnSpawn = (child: ChildProcess, argv: readonly string[]) => void;

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

export interface ReadyCheck {
  timeoutMs: number;
  /** Why waiting is pointless (the process died), else null. */
  failed?: () => string | null;
  auth?: { user?: string; pass?: string; authenticator?: Authenticator; tls?: TlsOptions };
  /** false: wait for a client connection only (a core-NATS server). Default true. */
  jetstream?: boolean;
}

/**
 * Poll until a client connects and the JetStream API answers (in a cluster:
 * once a meta leader exists).
 */
export async function waitForNats(url: string, check: ReadyCheck): Promise<void> {
  const deadline = Date.now() + check.timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const why = check.failed?.();
    if (why) throw new InfrastructureError(why);
    let nc: NatsConnection | null = null;
    try {
      nc = await connect({ servers: url, reconnect: false, timeout: 1000, ...check.auth });
      if (check.jetstream === false) return;
      await (await jetstreamManager(nc, { timeout: 1500 })).getAccountInfo();
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await nc?.close().catch(() => undefined);
    }
    await sleep(100);
  }
  throw new InfrastructureError(
    `nats-server at ${url} did not become ready in ${check.timeoutMs} ms: ${last}`,
  );
}

/**
 * Every node answering is not enough: until each has joined the meta group,
 * the cluster refuses to place a stream with `replicas` copies ("no suitable
 * peers for placement"). Ready means a probe stream of that size can be
 * created (and is deleted again).
 */
async function waitForPlacement(
  urls: string[],
  replicas: number,
  timeoutMs: number,
  failed: () => string | null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const name = `SQUAD_READY_PROBE_${process.pid}_${Date.now()}`;
  let last = "";
  const nc = await connect({ servers: urls, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 3000 });
    while (Date.now() < deadline) {
      const why = failed();
      if (why) throw new InfrastructureError(why);
      try {
        await jsm.streams.add({
          name,
          subjects: [`squad-ready-probe.${name}`],
          num_replicas: replicas,
        });
        await jsm.streams.delete(name);
        return;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(250);
    }
  } finally {
    await nc.close().catch(() => undefined);
  }
  throw new InfrastructureError(
    `the nats-server cluster could not place a stream with ${replicas} replicas in ${timeoutMs} ms: ${last}`,
  );
}

export interface NatsServerProcessSpec {
  /** `nats` alone; `n1`, `n2`... in a cluster. */
  name: string;
  bin: string;
  args: string[];
  port: number;
  storeDir: string;
  jetstream?: boolean;
  readyTimeoutMs?: number;
  /** How the readiness probe authenticates (a server with an authorization block). */
  readyAuth?: ReadyCheck["auth"];
  onSpawn?: OnSpawn;
}

/** One nats-server process that can be killed and started again on the same port and store. */
export class NatsServerProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  private child: ChildProcess | null = null;
  private output = "";
  private readonly spec: NatsServerProcessSpec;

  constructor(spec: NatsServerProcessSpec) {
    this.spec = spec;
    this.name = spec.name;
    this.port = spec.port;
    this.storeDir = spec.storeDir;
    this.url = `nats://127.0.0.1:${spec.port}`;
  }

  /** Process id (0 before the first start). */
  pid(): number {
    return this.child?.pid ?? 0;
  }

  running(): boolean {
    const c = this.child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  /** Why the process is not running (with the tail of its output), or null while it runs. */
  failure(): string | null {
    const c = this.child;
    if (!c) return `nats-server ${this.name} was not started`;
    if (c.exitCode === null && c.signalCode === null) return null;
    return `nats-server ${this.name} exited (code ${c.exitCode}, signal ${c.signalCode}):\n${this.output}`;
  }

  /** Spawn without waiting (a cluster waits once every node runs). */
  spawn(): void {
    this.output = "";
    const { bin, args } = this.spec;
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    // The tail only: enough to explain a failed start.
    const keep = (b: Buffer) => (this.output = (this.output + b.toString()).slice(-8000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    this.child = child;
    this.spec.onSpawn?.(child, [bin, ...args]);
  }

  async waitReady(timeoutMs = this.spec.readyTimeoutMs ?? 30_000): Promise<void> {
    await waitForNats(this.url, {
      timeoutMs,
      failed: () => this.failure(),
      jetstream: this.spec.jetstream ?? true,
      ...(this.spec.readyAuth ? { auth: this.spec.readyAuth } : {}),
    });
  }

  /** Start (again, on the same port and store) and wait until it answers; a no-op while running. */
  async start(): Promise<void> {
    if (this.running()) return;
    this.spawn();
    try {
      await this.waitReady();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  private async stopWith(sig: NodeJS.Signals, graceMs?: number): Promise<void> {
    const c = this.child;
    if (!c) return;
    if (this.running()) {
      const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      const timer = graceMs === undefined ? null : setTimeout(() => c.kill("SIGKILL"), graceMs);
      c.kill(sig);
      await gone;
      if (timer) clearTimeout(timer);
    }
    this.child = null;
  }

  /** SIGKILL and wait for the exit; the store stays. */
  kill(): Promise<void> {
    return this.stopWith("SIGKILL");
  }

  /** SIGTERM (JetStream flushes its store), SIGKILL after `graceMs`. */
  terminate(graceMs = 5000): Promise<void> {
    return this.stopWith("SIGTERM", graceMs);
  }

  /** Terminate, then start again on the same port and store. */
  async restart(): Promise<void> {
    await this.terminate();
    await this.start();
  }
}

export interface LocalNatsOptions {
  /** Reuse a store (kept at stop); default a new temp dir, removed at stop. */
  storeDir?: string;
  /** Default: a free random port. */
  port?: number;
  /** Extra nats.conf text (authorization, limits...), passed with -c. */
  configText?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** false: a core-NATS server without JetStream. Default true. */
  jetstream?: boolean;
  readyTimeoutMs?: number;
  /** How the readiness probe authenticates (a config with an authorization block). */
  readyAuth?: ReadyCheck["auth"];
  /** Temp dirs are named after it (`<prefix>-…`). Default "squad-nats". */
  tmpPrefix?: string;
  onSpawn?: OnSpawn;
}

export interface LocalNats {
  servers: NatsServerProcess[];
  urls: string[];
  /** Terminate every server and remove the temp dirs this made. */
  stop(): Promise<void>;
}

async function removeAll(dirs: readonly string[]): Promise<void> {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })));
}

/** One nats-server (JetStream on a temp store by default), ready when it answers. */
export async function startLocalNats(opts: LocalNatsOptions = {}): Promise<LocalNats> {
  const bin = await findNatsServerBinary();
  const prefix = opts.tmpPrefix ?? "squad-nats";
  const port = opts.port ?? (await freePort());
  const owned: string[] = [];
  const storeDir = opts.storeDir ?? (await mkdtemp(path.join(os.tmpdir(), `${prefix}-`)));
  if (!opts.storeDir) owned.push(storeDir);
  const jetstream = opts.jetstream ?? true;
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  if (jetstream) args.push("-js", "-sd", storeDir);
  if (opts.configText !== undefined) {
    const confDir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-conf-`));
    owned.push(confDir);
    const conf = path.join(confDir, "nats.conf");
    await writeFile(conf, opts.configText);
    args.unshift("-c", conf);
  }
  args.push(...(opts.args ?? []));
  const server = new NatsServerProcess({
    name: "nats",
    bin,
    args,
    port,
    storeDir,
    jetstream,
    readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
    ...(opts.readyAuth ? { readyAuth: opts.readyAuth } : {}),
    ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
  });
  try {
    await server.start();
  } catch (err) {
    await removeAll(owned);
    throw err;
  }
  return {
    servers: [server],
    urls: [server.url],
    async stop() {
      await server.terminate();
      await removeAll(owned);
    },
  };
}

export interface LocalClusterOptions {
  readyTimeoutMs?: number;
  /** The `cluster.name`. Default "squad". */
  clusterName?: string;
  /** JetStream's file store limit per node. Default "1GB". */
  maxFileStore?: string;
  tmpPrefix?: string;
  onSpawn?: OnSpawn;
}

/**
 * A real cluster of `n` servers on 127.0.0.1 (own names, routes to every
 * node, own stores under one temp dir); ready when JetStream has a meta
 * leader and answers on every node.
 */
export async function startLocalNatsCluster(
  n = 3,
  opts: LocalClusterOptions = {},
): Promise<LocalNats> {
  const bin = await findNatsServerBinary();
  const root = await mkdtemp(path.join(os.tmpdir(), `${opts.tmpPrefix ?? "squad-nats-cluster"}-`));
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
  const readyTimeoutMs = opts.readyTimeoutMs ?? 45_000;
  const servers: NatsServerProcess[] = [];
  for (let i = 0; i < n; i++) {
    const name = `n${i + 1}`;
    const storeDir = path.join(root, name);
    const conf = path.join(root, `${name}.conf`);
    await writeFile(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${ports[i]}`,
        `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 64MB, max_file_store: ${opts.maxFileStore ?? "1GB"} }`,
        `cluster { name: ${opts.clusterName ?? "squad"}, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes}] }`,
        "",
      ].join("\n"),
    );
    servers.push(
      new NatsServerProcess({
        name,
        bin,
        args: ["-c", conf],
        port: ports[i]!,
        storeDir,
        readyTimeoutMs,
        ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
      }),
    );
  }
  try {
    for (const s of servers) s.spawn();
    await Promise.all(servers.map((s) => s.waitReady()));
    await waitForPlacement(
      servers.map((s) => s.url),
      n,
      readyTimeoutMs,
      () => servers.map((s) => s.failure()).find((f) => f !== null) ?? null,
    );
  } catch (err) {
    await Promise.all(servers.map((s) => s.kill()));
    await removeAll([root]);
    throw err;
  }
  return {
    servers,
    urls: servers.map((s) => s.url),
    async stop() {
      await Promise.all(servers.map((s) => s.terminate()));
      await removeAll([root]);
    },
  };
}
