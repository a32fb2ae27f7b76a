/**
 * A private nats-server per benchmark (src/bus/nats-server-process.ts):
 * random port on 127.0.0.1, JetStream on a temp store, never the system
 * server on 4222; killed with the bench if the bench dies.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { findNatsServerBinary } from "../bus/nats-server-binary.ts";
import { startLocalNats } from "../bus/nats-server-process.ts";
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

export async function startBenchNatsServer(): Promise<BenchNatsServer> {
  const nats = await startLocalNats({
    tmpPrefix: "squad-bench-nats",
    onSpawn: (child) => trackChild(child),
  });
  return { url: nats.urls[0]!, pid: nats.servers[0]!.pid(), stop: () => nats.stop() };
}
