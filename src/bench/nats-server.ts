/**
 * A private nats-server per benchmark (src/bus/nats-server-process.ts):
 * random port on 127.0.0.1, JetStream on a temp store, never the system
 * server on 4222; killed with the bench if the bench dies.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { findNatsServerBinary } from "../bus/nats-server-binary.ts";
import { startLocalNats, startLocalNatsCluster } from "../bus/nats-server-process.ts";
import { trackChild } from "./processes.ts";

export interface BenchNatsServer {
  url: string;
  pid: number;
  /** Every server's pid (one, or the cluster's nodes). */
  pids: number[];
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
  const pid = nats.servers[0]!.pid();
  return { url: nats.urls[0]!, pid, pids: [pid], stop: () => nats.stop() };
}

/** A cluster of `n` nodes (src/bus/nats-server-process.ts); clients connect to the first. */
export async function startBenchNatsCluster(n = 3): Promise<BenchNatsServer> {
  const nats = await startLocalNatsCluster(n, {
    clusterName: "squad-bench",
    tmpPrefix: "squad-bench-cluster",
    onSpawn: (child) => trackChild(child),
  });
  const pids = nats.servers.map((s) => s.pid());
  return { url: nats.urls[0]!, pid: pids[0]!, pids, stop: () => nats.stop() };
}
