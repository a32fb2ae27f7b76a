import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AckPolicy,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import {
  StreamConfigConflictError,
  connectBus,
  ensureMissionsConsumer,
  ensureWorkerConsumer,
  createPublisher,
  natsAnswers,
  provisionStreams,
} from "../../src/bus/index.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { InfrastructureError } from "../../src/errors.ts";
import {
  freePort,
  startNatsCluster,
  startNatsServer,
  type NatsServerHandle,
} from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "test-provision" });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

beforeEach(async () => {
  for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
});

describe("provisionStreams", () => {
  it("creates the five streams of the contract with their retention and limits", async () => {
    const results = await provisionStreams(nc, { eventsMaxAgeS: 3600, duplicateWindowS: 60 });
    expect(results.map((r) => [r.stream, r.action])).toEqual([
      ["SQUAD_TASKS", "created"],
      ["SQUAD_EVENTS", "created"],
      ["SQUAD_STATUS", "created"],
      ["SQUAD_MISSIONS", "created"],
      ["SQUAD_DLQ", "created"],
    ]);
    const cfg = async (name: string) => (await jsm.streams.info(name)).config;
    expect(await cfg("SQUAD_TASKS")).toMatchObject({
      subjects: ["squad.tasks.*"],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(60_000),
    });
    expect(await cfg("SQUAD_EVENTS")).toMatchObject({
      subjects: ["squad.coordination"],
      retention: RetentionPolicy.Limits,
      max_age: nanos(3_600_000),
    });
    expect(await cfg("SQUAD_STATUS")).toMatchObject({
      subjects: ["squad.status.>"],
      max_msgs_per_subject: 1,
    });
    expect(await cfg("SQUAD_MISSIONS")).toMatchObject({
      subjects: ["squad.missions.submit"],
      retention: RetentionPolicy.Workqueue,
    });
    expect(await cfg("SQUAD_DLQ")).toMatchObject({
      subjects: ["squad.dlq.*"],
      retention: RetentionPolicy.Limits,
    });
  });

  it("is a no-op the second time", async () => {
    await provisionStreams(nc);
    const created = await jsm.streams.info("SQUAD_EVENTS");
    const again = await provisionStreams(nc);
    expect(again.every((r) => r.action === "unchanged")).toBe(true);
    expect((await jsm.streams.info("SQUAD_EVENTS")).created).toBe(created.created);
  });

  it("updates safe differences in place (max_age, duplicate window)", async () => {
    await provisionStreams(nc, { eventsMaxAgeS: 3600 });
    await nc.publish("squad.coordination", "kept across the update");
    await nc.flush();
    const results = await provisionStreams(nc, { eventsMaxAgeS: 7200, duplicateWindowS: 30 });
    const events = results.find((r) => r.stream === "SQUAD_EVENTS")!;
    expect(events.action).toBe("updated");
    expect(events.changed.sort()).toEqual(["duplicate_window", "max_age"]);
    expect(results.find((r) => r.stream === "SQUAD_TASKS")!.changed).toEqual(["duplicate_window"]);
    const info = await jsm.streams.info("SQUAD_EVENTS");
    expect(info.config.max_age).toBe(nanos(7_200_000));
    expect(info.state.messages).toBe(1);
  });

  it("refuses a stream whose retention or storage can't be changed, saying which field and what to do", async () => {
    await jsm.streams.add({
      name: "SQUAD_TASKS",
      subjects: ["squad.tasks.*"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
    });
    const err = await provisionStreams(nc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamConfigConflictError);
    expect(err).toBeInstanceOf(InfrastructureError);
    const e = err as StreamConfigConflictError;
    expect(e.stream).toBe("SQUAD_TASKS");
    expect(e.conflicts.map((c) => c.field).sort()).toEqual(["retention", "storage"]);
    expect(e.message).toMatch(/SQUAD_TASKS.*retention is limits, the contract needs workqueue/);
    expect(e.hint).toMatch(/nats stream rm SQUAD_TASKS/);
  });

  it("explains a subject clash with a foreign stream", async () => {
    await jsm.streams.add({ name: "SOMEONE_ELSE", subjects: ["squad.>"] });
    const err = await provisionStreams(nc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(/SQUAD_TASKS.*overlap/);
    expect((err as InfrastructureError).hint).toMatch(/nats stream ls/);
  });
});

describe("consumers", () => {
  it("creates worker-<agent> with the defaults and updates it idempotently", async () => {
    await provisionStreams(nc);
    const first = await ensureWorkerConsumer(nc, "builder");
    expect(first.config).toMatchObject({
      durable_name: "worker-builder",
      filter_subject: "squad.tasks.builder",
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
      max_deliver: 5,
      max_ack_pending: 1000,
    });
    const same = await ensureWorkerConsumer(nc, "builder");
    expect(same.created).toBe(first.created);
    const changed = await ensureWorkerConsumer(nc, "builder", {
      ackWaitMs: 10_000,
      maxAckPending: 8,
    });
    expect(changed.config).toMatchObject({
      ack_wait: nanos(10_000),
      max_ack_pending: 8,
      max_deliver: 5,
    });
    expect(changed.created).toBe(first.created);
    // Replicas starting together all call it at once.
    const racing = await Promise.all([1, 2, 3].map(() => ensureWorkerConsumer(nc, "tester")));
    expect(new Set(racing.map((c) => c.name))).toEqual(new Set(["worker-tester"]));
  });

  it("creates the orchestrator durable on SQUAD_MISSIONS", async () => {
    await provisionStreams(nc);
    const ci = await ensureMissionsConsumer(nc);
    expect(ci.config).toMatchObject({
      durable_name: "orchestrator",
      filter_subject: "squad.missions.submit",
    });
    expect((await ensureMissionsConsumer(nc)).created).toBe(ci.created);
  });

  it("says to provision first when the stream is missing", async () => {
    await expect(ensureWorkerConsumer(nc, "builder")).rejects.toThrow(/SQUAD_TASKS does not exist/);
  });
});

describe("connectBus / natsAnswers", () => {
  it("fails a first connect with an InfrastructureError and a hint", async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const err = await connectBus({ servers: url, name: "nobody", timeoutMs: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain(`NATS is not reachable at ${url}`);
    expect((err as InfrastructureError).hint).toMatch(/NATS_URL/);
    expect(await natsAnswers(url, 500)).toBe(false);
  });

  it("probes a live server", async () => {
    expect(await natsAnswers(server.url, 2000)).toBe(true);
    expect(await natsAnswers(`127.0.0.1:${server.port}`, 2000)).toBe(true);
  });
});

describe("more replicas than servers", () => {
  const expectReplicaHint = (err: unknown, message: RegExp) => {
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/asks for 3 replicas/);
    expect((err as InfrastructureError).hint).toMatch(
      /at least 3 JetStream servers[^]*SWARM_STREAM_REPLICAS/,
    );
  };

  it("on a single server: refused at once, saying what the replicas need", async () => {
    const err = await provisionStreams(nc, { replicas: 3 }).catch((e: unknown) => e);
    expectReplicaHint(err, /not supported in non-clustered mode/);
  });

  it("on a cluster too small: retried while it may still be forming, then the same advice", async () => {
    const cluster = await startNatsCluster(2);
    const c = await connectBus({ servers: cluster.urls, name: "test-r3-on-two" });
    try {
      const started = Date.now();
      const err = await provisionStreams(c, { replicas: 3, placementPatienceMs: 1500 }).catch(
        (e: unknown) => e,
      );
      expectReplicaHint(err, /no suitable peers for placement/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    } finally {
      await c.close();
      await cluster.stop();
    }
  }, 60_000);
});

describe("a server without JetStream", () => {
  it("gets an InfrastructureError with a hint from provisioning and publishing", async () => {
    const plain = await startNatsServer({ jetstream: false });
    const c = await connectBus({ servers: plain.url, name: "test-plain" });
    try {
      const err = await provisionStreams(c).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as Error).message).toMatch(/JetStream is not available/);
      expect((err as InfrastructureError).hint).toMatch(/-js/);
      const publisher = createPublisher(c, { retry: { attempts: 2, baseDelayMs: 10 } });
      const e = makeEvent(
        "wave_started",
        { mission_id: "m1", source: "o" },
        { wave: 1, task_ids: [] },
      );
      await expect(publisher.publish(e)).rejects.toThrow(
        /could not publish wave_started .* to squad\.coordination/,
      );
    } finally {
      await c.close();
      await plain.stop();
    }
  });
});
