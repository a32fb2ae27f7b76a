import { findNatsServerBinary } from "../bus/nats-server-binary.ts";
/**
 * A private nats-server per benchmark: random port on 127.0.0.1, JetStream on
 * a temp store, never the system server on 4222. A minimal copy of the start
 * logic of tests/helpers/nats-server.ts (src/ does not import tests/).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { trackChild } from "./processes.ts";

export interface BenchNatsServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** NATS_SERVER_BIN, else nats-server on PATH, else Debian's path. */
export function findNatsServer(): Promise<string> {
  return findNatsServerBinary(process.env);
}

/** `nats-server --version` output, e.g. "nats-server: v2.9.10". */
export async function natsServerVersion(): Promise<string> {
  const bin = await findNatsServer();
  const { stdout } = await promisify(execFile)(bin, ["--version"]);
  return stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function startBenchNatsServer(): Promise<BenchNatsServer> {
  const bin = await findNatsServer();
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(os.tmpdir(), "squad-bench-nats-"));
  const child = spawn(bin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  trackChild(child);
  let output = "";
  child.stderr?.on("data", (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  });
  const url = `nats://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited(child);
    clearTimeout(timer);
    await rm(storeDir, { recursive: true, force: true, maxRetries: 3 });
  };
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
      try {
        await (await jetstreamManager(nc, { timeout: 1500 })).getAccountInfo();
        return { url, pid: child.pid ?? 0, stop };
      } finally {
        await nc.close();
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  await stop();
  throw new InfrastructureError(`nats-server on ${url} did not start: ${last}\n${output}`);
}
