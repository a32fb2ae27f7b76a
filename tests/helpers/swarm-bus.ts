/**
 * The fixture of the CLI suites that talk to a running bus: one nats-server
 * for the file with the streams provisioned, an admin connection and
 * publisher, a temporary workspace and the environment a `swarm` process
 * gets. Call `useSwarmBus(name)` at the top of a test file: it registers its
 * own beforeAll/afterAll (which also kills the file's swarm processes).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  type Publisher,
} from "../../src/bus/index.ts";
import { startNatsServer, type NatsServerHandle } from "./nats-server.ts";
import { killAllSwarms, swarmEnv } from "./swarm-process.ts";

export interface SwarmBus {
  readonly server: NatsServerHandle;
  readonly nc: NatsConnection;
  readonly publisher: Publisher;
  readonly workspace: string;
  /** For `swarm` processes: this server and workspace, JSON logs. */
  readonly env: NodeJS.ProcessEnv;
}

export function useSwarmBus(name: string): SwarmBus {
  let state: (SwarmBus & { ready: true }) | undefined;
  const get = (): SwarmBus => {
    if (!state) throw new Error("the swarm bus is used before beforeAll ran");
    return state;
  };
  beforeAll(async () => {
    const server = await startNatsServer();
    const workspace = await mkdtemp(path.join(os.tmpdir(), `swarm-${name}-test-`));
    const nc = await connectBus({ servers: server.url, name: `${name}-test` });
    await provisionStreams(nc);
    state = {
      ready: true,
      server,
      nc,
      publisher: createPublisher(nc),
      workspace,
      env: swarmEnv(server.url, workspace),
    };
  });
  afterAll(async () => {
    await killAllSwarms();
    await state?.nc.close();
    await state?.server.stop();
    if (state) await rm(state.workspace, { recursive: true, force: true });
  });
  return {
    get server() {
      return get().server;
    },
    get nc() {
      return get().nc;
    },
    get publisher() {
      return get().publisher;
    },
    get workspace() {
      return get().workspace;
    },
    get env() {
      return get().env;
    },
  };
}
