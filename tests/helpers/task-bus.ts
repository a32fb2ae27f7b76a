/**
 * The bus fixture of the puller suites: one nats-server for the file, the
 * streams provisioned, an admin connection and publisher, and a connection
 * per replica (as separate processes would have). Call `useTaskBus()` at the
 * top of a test file: it registers its own beforeAll/afterAll.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  type Publisher,
  type TaskPuller,
} from "../../src/bus/index.ts";
import { startNatsServer, type NatsServerHandle } from "./nats-server.ts";

export interface TaskBus {
  readonly server: NatsServerHandle;
  /** The admin connection (publishing, consumers, stream info). */
  readonly nc: NatsConnection;
  readonly publisher: Publisher;
  /** A new connection, closed after the file. */
  connect(name: string): Promise<NatsConnection>;
  /** Stopped after the file. */
  track(p: TaskPuller): TaskPuller;
  readonly pullers: readonly TaskPuller[];
}

export function useTaskBus(): TaskBus {
  let server: NatsServerHandle | undefined;
  let nc: NatsConnection | undefined;
  let publisher: Publisher | undefined;
  const connections: NatsConnection[] = [];
  const pullers: TaskPuller[] = [];
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("the task bus is used before beforeAll ran");
    return v;
  };
  const bus: TaskBus = {
    get server() {
      return ready(server);
    },
    get nc() {
      return ready(nc);
    },
    get publisher() {
      return ready(publisher);
    },
    pullers,
    async connect(name) {
      const c = await connectBus({ servers: ready(server).url, name });
      connections.push(c);
      return c;
    },
    track(p) {
      pullers.push(p);
      return p;
    },
  };
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await bus.connect("test-admin");
    await provisionStreams(nc);
    publisher = createPublisher(nc);
  });
  afterAll(async () => {
    await Promise.all(pullers.map((p) => p.stop()));
    await Promise.all(connections.map((c) => c.close()));
    await server?.stop();
  });
  return bus;
}
