import { findNatsServerBinary } from "../bus/nats-server-binary.ts";
/**
 * The nats-servers of a chaos run: one server, or a cluster of three, each on
 * random ports of 127.0.0.1 with its own temp store (never the system server
 * on 4222). They can be SIGKILLed and started again on the same port and
 * store, which is the "NATS restart" the scenarios inject. A small copy of
 * tests/helpers/nats-server.ts: src/ does not import tests/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { forget, remember, signal } from "./processes.ts";

export interface ChaosNatsServer {
  /** `n1`, `n2`... in a cluster; `nats` alone. */
  name: string;
  url: string;
  port: number;
  storeDir: string;
  pid(): number;
  running(): boolean;
  /** SIGKILL and wait for the exit; the store stays. */
  kill(): Promise<void>;
  /** Start again on the same port and store, and wait until JetStream answers. */
  start(): Promise<void>;
  /** SIGTERM (JetStream flushes), SIGKILL after 5 s. */
  terminate(): Promise<void>;
}

export interface ChaosNats {
  servers: ChaosNatsServer[];
  /** Every server's URL: what clients get (they also learn the cluster from the servers). */
  urls: string[];
  stop(): Promise<void>;
}

/** NATS_SERVER_BIN, else nats-server on PATH, else Debian's path. */
export function findNatsServer(): Promise<string> {
  return findNatsServerBinary(process.env);
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

class Server implements ChaosNatsServer {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  private child: ChildProcess | null = null;
  private output = "";
  private readonly bin: string;
  private readonly args: string[];

  constructor(o: { name: string; bin: string; args: string[]; port: number; storeDir: string }) {
    this.name = o.name;
    this.bin = o.bin;
    this.args = o.args;
    this.port = o.port;
    this.storeDir = o.storeDir;
    this.url = `nats://127.0.0.1:${o.port}`;
  }

  pid(): number {
    return this.child?.pid ?? 0;
  }

  running(): boolean {
    const c = this.child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  spawnOnly(): void {
    this.output = "";
    const child = spawn(this.bin, this.args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (b: Buffer) => (this.output = (this.output + b.toString()).slice(-8000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("error", (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    this.child = child;
    if (child.pid) remember(child.pid, [this.bin, ...this.args]);
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      if (!this.running()) throw new Error(`nats-server ${this.name} exited:\n${this.output}`);
      const nc = await connect({ servers: this.url, reconnect: false, timeout: 1000 }).catch(
        (e: unknown) => {
          last = (e as Error).message;
          return null;
        },
      );
      if (nc) {
        try {
          await (await jetstreamManager(nc, { timeout: 1500 })).getAccountInfo();
          return;
        } catch (e) {
          last = (e as Error).message;
        } finally {
          await nc.close().catch(() => undefined);
        }
      }
      await sleep(150);
    }
    throw new Error(
      `nats-server ${this.name} at ${this.url} not ready in ${timeoutMs} ms: ${last}`,
    );
  }

  async start(): Promise<void> {
    if (this.running()) return;
    this.spawnOnly();
    await this.waitReady();
  }

  private async stopWith(sig: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || !this.running()) return;
    const gone = new Promise<void>((r) => c.once("exit", () => r()));
    signal(c.pid!, sig);
    await gone;
    forget(c.pid!);
  }

  kill(): Promise<void> {
    return this.stopWith("SIGKILL");
  }

  async terminate(): Promise<void> {
    const timer = setTimeout(() => this.child?.pid && signal(this.child.pid, "SIGKILL"), 5000);
    await this.stopWith("SIGTERM");
    clearTimeout(timer);
  }
}

/** One nats-server with JetStream on a random port and a temp store. */
export async function startNats(): Promise<ChaosNats> {
  const bin = await findNatsServer();
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(os.tmpdir(), "squad-chaos-nats-"));
  const server = new Server({
    name: "nats",
    bin,
    port,
    storeDir,
    args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
  });
  try {
    await server.start();
  } catch (err) {
    await server.kill();
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  return {
    servers: [server],
    urls: [server.url],
    async stop() {
      await server.terminate();
      await rm(storeDir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** A real cluster of `n` servers on 127.0.0.1 (own names, routes, stores); ready when JetStream answers on each. */
export async function startNatsCluster(n = 3): Promise<ChaosNats> {
  const bin = await findNatsServer();
  const root = await mkdtemp(path.join(os.tmpdir(), "squad-chaos-cluster-"));
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const name = `n${i + 1}`;
    const storeDir = path.join(root, name);
    const conf = path.join(root, `${name}.conf`);
    await writeFile(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${ports[i]}`,
        `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 64MB, max_file_store: 1GB }`,
        `cluster { name: squad-chaos, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes}] }`,
        "",
      ].join("\n"),
    );
    servers.push(new Server({ name, bin, port: ports[i]!, storeDir, args: ["-c", conf] }));
  }
  const stop = async () => {
    await Promise.all(servers.map((s) => s.terminate()));
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    for (const s of servers) s.spawnOnly();
    await Promise.all(servers.map((s) => s.waitReady(45_000)));
  } catch (err) {
    await Promise.all(servers.map((s) => s.kill()));
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return { servers, urls: servers.map((s) => s.url), stop };
}
