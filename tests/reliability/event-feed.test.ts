/**
 * The event feed (followEvents) after a server restart and after losing the
 * cluster node that held its consumer: every event arrives, once, in order,
 * and soon. Before the fix, the first case stalled for two idle-heartbeat
 * periods (half a minute) and the second never delivered again.
 *
 * Every wait here is for an event (an arrival, a caught-up replica, an
 * elected leader), never for a fixed time: on a loaded machine raft
 * elections and catch-up take as long as they take. The tests' own timeouts
 * are the only clocks, and they sit far above a healthy run.
 */
import { afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  connectBus,
  createPublisher,
  followEvents,
  provisionStreams,
  type EventFeed,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { createLogger } from "../../src/log.ts";
import { makeEvent } from "../../src/schema/index.ts";
import {
  startNatsCluster,
  startNatsServer,
  type NatsClusterHandle,
  type NatsServerHandle,
} from "../helpers/nats-server.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function wave(n: number) {
  return makeEvent(
    "wave_started",
    { id: `feed-test-${n}`, mission_id: "m-feed", source: "orchestrator" },
    { wave: n, task_ids: [] },
  );
}

/** Follow from seq 1, collecting waves; `waitFor(n)` resolves when `n` arrived. */
async function collector(nc: NatsConnection) {
  const got: number[] = [];
  let wake = () => undefined as void;
  const feed: EventFeed = await followEvents(nc, {
    fromSeq: 1,
    ...(process.env.FEED_DEBUG ? { log: createLogger("feed") } : {}),
    onEvent: (e) => {
      if (e.type === "wave_started") got.push(e.payload.wave);
      wake();
    },
  });
  cleanups.push(() => feed.stop());
  return {
    got,
    async waitFor(n: number) {
      while (got.length < n) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

/** Re-checks `cond` until it holds: each check is a server round trip, so this waits on the server. */
async function until(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((resolve) => setTimeout(resolve, 200));
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("the event feed", () => {
  it("delivers every event, once and in order, across a nats-server SIGKILL and restart", async () => {
    const server: NatsServerHandle = await startNatsServer();
    cleanups.push(() => server.stop());
    const pubNc = await connectBus({ servers: server.url, name: "pub", reconnectTimeWaitMs: 250 });
    const subNc = await connectBus({ servers: server.url, name: "sub", reconnectTimeWaitMs: 250 });
    cleanups.push(
      () => pubNc.close(),
      () => subNc.close(),
    );
    await provisionStreams(pubNc);
    const publisher = createPublisher(pubNc);
    const feed = await collector(subNc);
    for (const n of range(1, 20)) await publisher.publish(wave(n));
    await feed.waitFor(20);

    await server.kill();
    await server.restart();
    for (const n of range(21, 60)) await publisher.publish(wave(n));
    await feed.waitFor(60);
    expect(feed.got).toEqual(range(1, 60));
  }, 60_000);

  it("keeps delivering when the cluster node holding its consumer dies (stream scaled R1 → R3)", async () => {
    const cluster: NatsClusterHandle = await startNatsCluster(3);
    cleanups.push(() => cluster.stop());
    const pubNc = await connectBus({
      servers: cluster.urls,
      name: "pub",
      reconnectTimeWaitMs: 250,
    });
    cleanups.push(() => pubNc.close());
    await provisionStreams(pubNc, { replicas: 1 });
    const jsm = await jetstreamManager(pubNc);
    // An R1 stream lives on one node; the feed's consumer is made there too.
    const host = (await jsm.streams.info("SQUAD_EVENTS")).cluster?.leader;
    const victim = cluster.servers[Number(host?.replace(/^n/, "")) - 1];
    expect(victim).toBeDefined();
    const publisher = createPublisher(pubNc);
    await publisher.publish(wave(1));
    const subNc = await connectBus({
      servers: cluster.urls,
      name: "sub",
      reconnectTimeWaitMs: 250,
    });
    cleanups.push(() => subNc.close());
    const feed = await collector(subNc);
    await feed.waitFor(1);

    // Scaled up under the running feed (as a later process with SWARM_STREAM_REPLICAS=3 does).
    await provisionStreams(pubNc, { replicas: 3 });
    expect((await jsm.streams.info("SQUAD_EVENTS")).config.num_replicas).toBe(3);
    // A process that was not told the setting must not scale it down again.
    const before = process.env.SWARM_STREAM_REPLICAS;
    delete process.env.SWARM_STREAM_REPLICAS;
    try {
      expect((await provisionStreams(pubNc)).every((r) => r.action === "unchanged")).toBe(true);
    } finally {
      if (before !== undefined) process.env.SWARM_STREAM_REPLICAS = before;
    }

    // Only once the new replicas hold the data (right after a scale-up the old node is its only copy).
    const streamCluster = () =>
      jsm.streams.info("SQUAD_EVENTS").then(
        (i) => i.cluster,
        () => undefined, // no leader right now, or a timeout on a busy machine: ask again
      );
    await until(async () => {
      const c = await streamCluster();
      return c?.replicas?.length === 2 && c.replicas.every((r) => r.current && !r.lag);
    });
    await victim!.kill();
    // Until the two survivors elect a stream leader, publishes meet no responders: wait for
    // the election (it is the cluster's business, not the feed's), then publish.
    await until(async () => {
      const c = await streamCluster();
      return c?.leader !== undefined && c.leader !== host;
    });
    const patient = createPublisher(pubNc, { retry: { attempts: 30, maxDelayMs: 2000 } });
    for (const n of range(2, 30)) await patient.publish(wave(n), { timeoutMs: 2000 });
    await feed.waitFor(30);
    expect(feed.got).toEqual(range(1, 30));
  }, 300_000);
});
