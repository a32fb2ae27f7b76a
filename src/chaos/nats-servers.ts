/**
 * The nats-servers of a chaos run: one server, or a cluster of three
 * (src/bus/nats-server-process.ts), each registered with the chaos process
 * table so a crashed runner leaves none behind. The scenarios SIGKILL them
 * and start them again on the same port and store.
 */
import { findNatsServerBinary } from "../bus/nats-server-binary.ts";
import {
  startLocalNats,
  startLocalNatsCluster,
  type LocalNats,
  type NatsServerProcess,
  type OnSpawn,
} from "../bus/nats-server-process.ts";
import { forget, remember } from "./processes.ts";

export type ChaosNatsServer = NatsServerProcess;
export type ChaosNats = LocalNats;

/** NATS_SERVER_BIN, else nats-server on PATH, else Debian's path. */
export function findNatsServer(): Promise<string> {
  return findNatsServerBinary(process.env);
}

const track: OnSpawn = (child, argv) => {
  const pid = child.pid;
  if (!pid) return;
  remember(pid, argv);
  child.once("exit", () => forget(pid));
};

/** One nats-server with JetStream on a random port and a temp store. */
export function startNats(): Promise<ChaosNats> {
  return startLocalNats({ tmpPrefix: "squad-chaos-nats", readyTimeoutMs: 30_000, onSpawn: track });
}

/** A real cluster of `n` servers on 127.0.0.1 (own names, routes, stores). */
export function startNatsCluster(n = 3): Promise<ChaosNats> {
  return startLocalNatsCluster(n, {
    clusterName: "squad-chaos",
    tmpPrefix: "squad-chaos-cluster",
    onSpawn: track,
  });
}
