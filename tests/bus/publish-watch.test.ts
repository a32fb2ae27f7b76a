import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  replayEvents,
  subjectFor,
  watchEvents,
  type Publisher,
  type PublishResult,
} from "../../src/bus/index.ts";
import {
  EVENT_TYPES,
  SchemaValidationError,
  ensureEvent,
  makeEvent,
  type SquadEvent,
} from "../../src/schema/index.ts";
import { exampleEvents, taskAssignedEvent } from "../helpers/example-events.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let watcherNc: NatsConnection;
let publisher: Publisher;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "test-publisher" });
  watcherNc = await connectBus({ servers: server.url, name: "test-watcher" });
  await provisionStreams(nc);
  publisher = createPublisher(nc);
});

afterAll(async () => {
  await nc?.close();
  await watcherNc?.close();
  await server?.stop();
});

/** Collect what a watcher sees until `n` events arrived. */
function collect(n: number, subject?: string) {
  const seen: { event: SquadEvent; subject: string }[] = [];
  const invalid: { err: Error; subject: string }[] = [];
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const watch = watchEvents(watcherNc, {
    ...(subject ? { subject } : {}),
    onEvent: (event, subj) => {
      seen.push({ event, subject: subj });
      if (seen.length >= n) resolveAll();
    },
    onInvalid: (err, subj) => invalid.push({ err, subject: subj }),
  });
  return { seen, invalid, all, watch };
}

describe("publish → watch", () => {
  it("round-trips one valid example of every event type, routed by type", async () => {
    const examples = exampleEvents();
    expect(examples.map((e) => e.type)).toEqual(EVENT_TYPES);
    const { seen, invalid, all, watch } = collect(examples.length);
    await watch.ready;

    const acks: PublishResult[] = [];
    for (const e of examples) acks.push(await publisher.publish(e));
    await all;
    await watch.stop();

    expect(invalid).toEqual([]);
    expect(seen.map((s) => s.event)).toEqual(examples);
    const byType = new Map(seen.map((s) => [s.event.type, s.subject]));
    expect(byType.get("task_assigned")).toBe("squad.tasks.builder");
    expect(byType.get("agent_online")).toBe("squad.status.builder.w1");
    expect(byType.get("agent_heartbeat")).toBe("squad.status.builder.w1");
    expect(byType.get("agent_offline")).toBe("squad.status.builder.w1");
    expect(byType.get("mission_submitted")).toBe("squad.missions.submit");
    expect(byType.get("wave_started")).toBe("squad.coordination");
    expect(byType.get("task_completed")).toBe("squad.coordination");
    for (const e of examples) expect(subjectFor(e)).toBe(byType.get(e.type));

    const streamOf = new Map(examples.map((e, i) => [e.type, acks[i]!.stream]));
    expect(streamOf.get("task_assigned")).toBe("SQUAD_TASKS");
    expect(streamOf.get("agent_heartbeat")).toBe("SQUAD_STATUS");
    expect(streamOf.get("mission_submitted")).toBe("SQUAD_MISSIONS");
    expect(streamOf.get("mission_planned")).toBe("SQUAD_EVENTS");
    expect(acks.every((a) => !a.duplicate && a.seq > 0)).toBe(true);
  });

  it("adds Squad-Type and Squad-Mission headers", async () => {
    const e = makeEvent(
      "wave_started",
      { mission_id: "m-headers", source: "orchestrator" },
      { wave: 2, task_ids: ["a"] },
    );
    const ack = await publisher.publish(e);
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage("SQUAD_EVENTS", { seq: ack.seq });
    expect(stored?.header.get("Squad-Type")).toBe("wave_started");
    expect(stored?.header.get("Squad-Mission")).toBe("m-headers");
    expect(stored?.header.get("Nats-Msg-Id")).toBe(e.id);
  });

  it("refuses an invalid event before publishing, naming the field", async () => {
    const jsm = await jetstreamManager(nc);
    const stored = async () => {
      let n = 0;
      for (const s of ["SQUAD_TASKS", "SQUAD_STATUS", "SQUAD_EVENTS", "SQUAD_MISSIONS"]) {
        n += (await jsm.streams.info(s)).state.messages;
      }
      return n;
    };
    const before = await stored();
    const bad = structuredClone(taskAssignedEvent("builder", "t-bad")) as unknown as EventLike;
    bad.payload.task.timeout_s = -5;
    const err = await publisher.publish(bad as unknown as SquadEvent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaValidationError);
    expect((err as Error).message).toContain("payload.task.timeout_s");
    const noType = { ...exampleEvents()[0]!, type: "mission_exploded" } as unknown as SquadEvent;
    await expect(publisher.publish(noType)).rejects.toThrow(/type/);
    const badInstance = structuredClone(
      exampleEvents().find((e) => e.type === "agent_heartbeat")!,
    ) as unknown as EventLike;
    badInstance.payload.instance = "w.1";
    await expect(publisher.publish(badInstance as unknown as SquadEvent)).rejects.toThrow(
      /payload\.instance/,
    );
    expect(await stored()).toBe(before);
  });

  it("takes an event makeEvent built as it is, and parses anything else", () => {
    const built = makeEvent(
      "wave_started",
      { mission_id: "m-once", source: "t" },
      {
        wave: 1,
        task_ids: ["a"],
      },
    );
    expect(ensureEvent(built)).toBe(built);
    const copy = structuredClone(built);
    const parsed = ensureEvent(copy);
    expect(parsed).not.toBe(copy);
    expect(parsed).toEqual(built);
    const broken = { ...copy, payload: { wave: 0, task_ids: [] } };
    expect(() => ensureEvent(broken)).toThrow(SchemaValidationError);
  });

  it("stores the same event id once inside the duplicate window", async () => {
    const e = makeEvent(
      "wave_completed",
      { mission_id: "m-dupe", source: "orchestrator" },
      {
        wave: 1,
        succeeded: ["a"],
        failed: [],
      },
    );
    const first = await publisher.publish(e);
    const second = await publisher.publish(e);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    const replayed = [];
    for await (const r of replayEvents(nc, { missionId: "m-dupe" })) replayed.push(r);
    expect(replayed.map((r) => r.event.id)).toEqual([e.id]);
  });

  it("passes only the event types asked for, with or without the Squad-Type header", async () => {
    const seen: string[] = [];
    const invalid: string[] = [];
    const watch = watchEvents(watcherNc, {
      subject: "squad.coordination",
      types: ["mission_cancelled"],
      onEvent: (e) => seen.push(`${e.type} ${e.mission_id}`),
      onInvalid: (err) => invalid.push(err.message),
    });
    await watch.ready;
    const fields = { mission_id: "m-types", source: "test" };
    await publisher.publish(makeEvent("wave_started", fields, { wave: 1, task_ids: [] }));
    // Without headers (as `nats pub` would send it): decoded, then filtered by its type.
    nc.publish(
      "squad.coordination",
      JSON.stringify(makeEvent("wave_started", fields, { wave: 2, task_ids: [] })),
    );
    nc.publish(
      "squad.coordination",
      JSON.stringify(makeEvent("mission_cancelled", fields, { reason: "bare" })),
    );
    await publisher.publish(makeEvent("mission_cancelled", fields, { reason: "stop" }));
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    await watch.stop();
    expect(seen).toEqual(["mission_cancelled m-types", "mission_cancelled m-types"]);
    expect(invalid).toEqual([]);
  });

  it("reports invalid messages on the bus to onInvalid instead of onEvent", async () => {
    const { seen, invalid, watch } = collect(1, "squad.coordination");
    await watch.ready;
    nc.publish("squad.coordination", "not json at all");
    nc.publish("squad.coordination", JSON.stringify({ schema: 1, type: "wave_started" }));
    await nc.flush();
    await vi.waitFor(() => expect(invalid).toHaveLength(2));
    await watch.stop();
    expect(seen).toEqual([]);
    expect(invalid[0]!.err.message).toMatch(/not JSON/);
    expect(invalid[1]!.err).toBeInstanceOf(SchemaValidationError);
  });
});

describe("replayEvents", () => {
  it("reads SQUAD_EVENTS in order, filtered by mission, and ends when caught up", async () => {
    const mk = (mission: string, wave: number) =>
      makeEvent(
        "wave_started",
        { mission_id: mission, source: "orchestrator" },
        { wave, task_ids: [`t${wave}`] },
      );
    const mine = [mk("m-replay", 1), mk("m-replay", 2), mk("m-replay", 3)];
    await publisher.publish(mine[0]!);
    await publisher.publish(mk("m-other", 1));
    await publisher.publish(mine[1]!);
    // Not a valid event: skipped with a log line, not thrown.
    await (
      await import("@nats-io/jetstream")
    )
      .jetstream(nc)
      .publish("squad.coordination", "garbage");
    await publisher.publish(mine[2]!);

    const got: { event: SquadEvent; seq: number }[] = [];
    for await (const r of replayEvents(nc, { missionId: "m-replay" })) got.push(r);
    expect(got.map((r) => r.event)).toEqual(mine);
    expect(got.map((r) => r.seq)).toEqual([...got.map((r) => r.seq)].sort((a, b) => a - b));

    const fromSecond: SquadEvent[] = [];
    for await (const r of replayEvents(nc, { missionId: "m-replay", fromSeq: got[1]!.seq }))
      fromSecond.push(r.event);
    expect(fromSecond).toEqual(mine.slice(1));

    // Events published after the call started are not waited for.
    const all: number[] = [];
    for await (const r of replayEvents(nc)) all.push(r.seq);
    expect(all.length).toBeGreaterThanOrEqual(5);
  });
});

type EventLike = {
  payload: Record<string, unknown> & { task: Record<string, unknown>; instance?: string };
};
