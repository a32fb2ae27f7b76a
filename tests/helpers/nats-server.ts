/**
 * A real nats-server per test suite: its own random port and temp store, never
 * the system server on 4222 (src/bus/nats-server-process.ts starts it). The
 * binary comes from NATS_SERVER_BIN, else PATH, else /usr/sbin/nats-server
 * (Debian's 2.9.10). Only when no binary exists and a container runtime
 * answers does it fall back to @testcontainers/nats.
 */
import type { ChildProcess } from "node:child_process";
import { findNatsServerBinary } from "../../src/bus/nats-server-binary.ts";
import {
  freePort,
  startLocalNats,
  startLocalNatsCluster,
  waitForNats,
  type NatsServerProcess,
  type OnSpawn,
  type ReadyCheck,
} from "../../src/bus/nats-server-process.ts";
import { InfrastructureError } from "../../src/errors.ts";

export { freePort };

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
  /** How the readiness probe authenticates, for a configText with an authorization block. */
  readyAuth?: ReadyCheck["auth"];
}

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  /** Process id of the server (0 for a container). */
  readonly pid: number;
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

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A crashed test run must not leave servers behind. */
const track: OnSpawn = (child) => {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
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
};

function handleOf(server: NatsServerProcess, stop: () => Promise<void>): NatsServerHandle {
  return {
    url: server.url,
    port: server.port,
    storeDir: server.storeDir,
    get pid() {
      return server.pid();
    },
    stop,
    kill: () => server.kill(),
    restart: () => server.restart(),
  };
}

/** Start one nats-server with JetStream on 127.0.0.1 and wait until JetStream answers. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  try {
    await findNatsServerBinary();
  } catch (err) {
    if (process.env.NATS_SERVER_BIN) throw err;
    return startContainerServer(opts);
  }
  const nats = await startLocalNats({ ...opts, onSpawn: track });
  return handleOf(nats.servers[0]!, () => nats.stop());
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
  const cluster = await startLocalNatsCluster(n, {
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    clusterName: "squad-test",
    maxFileStore: "256MB",
    tmpPrefix: "squad-nats-cluster",
    onSpawn: track,
  });
  return {
    urls: cluster.urls,
    servers: cluster.servers.map((s) => handleOf(s, () => s.terminate())),
    stop: () => cluster.stop(),
  };
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
  if (
    opts.configText !== undefined ||
    opts.storeDir !== undefined ||
    opts.port !== undefined ||
    opts.readyAuth !== undefined
  ) {
    throw new Error(
      "the container fallback supports no configText/storeDir/port; install nats-server",
    );
  }
  if (!(await containerRuntimeAnswers())) {
    throw new InfrastructureError(
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
      await waitForNats(handle.url, { timeoutMs: opts.readyTimeoutMs ?? 30_000, auth: conn });
    },
  };
  const refresh = () => {
    handle.port = container.getMappedPort(4222);
    handle.url = `nats://${container.getHost()}:${handle.port}`;
  };
  refresh();
  await waitForNats(handle.url, { timeoutMs: opts.readyTimeoutMs ?? 30_000, auth: conn });
  return handle;
}
