import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBus, createPublisher, provisionStreams } from "../../src/bus/index.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { startNatsCluster, type NatsClusterHandle } from "../helpers/nats-server.ts";

let cluster: NatsClusterHandle;
let nc: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  nc = await connectBus({ servers: cluster.urls, name: "test-cluster", reconnectTimeWaitMs: 250 });
});

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

describe("a 3-node cluster", () => {
  it("keeps accepting publishes to R3 streams with one node killed", async () => {
    await provisionStreams(nc, { replicas: 3 });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("SQUAD_EVENTS");
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas).toHaveLength(2);

    const publisher = createPublisher(nc);
    const wave = (n: number) =>
      makeEvent(
        "wave_started",
        { mission_id: "m-cluster", source: "orchestrator" },
        { wave: n, task_ids: [] },
      );
    await publisher.publish(wave(1));

    // The hard case: kill the stream's leader, so the publish rides out an election (quorum 2 of 3).
    const leader = info.cluster?.leader;
    const victim = cluster.servers[Number(leader?.replace(/^n/, "")) - 1]!;
    expect(victim).toBeDefined();
    await victim.kill();
    // The publisher's bounded retry rides out the election. A retry of a publish that did land
    // answers duplicate with the first sequence, so the sequences prove each was stored once.
    const seqs: number[] = [];
    for (let n = 2; n <= 4; n++) {
      const ack = await publisher.publish(wave(n), { timeoutMs: 1000 });
      expect(ack.stream).toBe("SQUAD_EVENTS");
      seqs.push(ack.seq);
    }
    expect(seqs).toEqual([2, 3, 4]);

    // The killed node comes back on its own store and rejoins.
    await victim.restart();
    expect(await publisher.publish(wave(5))).toMatchObject({ seq: 5, duplicate: false });
    expect((await jsm.streams.info("SQUAD_EVENTS")).state.messages).toBe(5);
  });
});
