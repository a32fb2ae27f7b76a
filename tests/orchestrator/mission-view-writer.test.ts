/**
 * The mission view's writer (src/orchestrator/mission-view-writer.ts) on a
 * real nats-server: two orchestrators folding the same events write the
 * same values as the pure fold, whatever order their writes land in; the
 * index names every mission in its place with the watermark at the last
 * event; a later writer folds a straggler onto what the bucket holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectBus,
  createPublisher,
  openMissionViewStore,
  provisionStreams,
  replayEvents,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { silentLogger } from "../../src/log.ts";
import { foldMissionEvent } from "../../src/orchestrator/mission-view.ts";
import { createMissionViewWriter } from "../../src/orchestrator/mission-view-writer.ts";
import { makeEvent, type MissionSummaryValue, type SquadEvent } from "../../src/schema/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "view-writer-test" });
  await provisionStreams(nc);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

const planned = (id: string) =>
  makeEvent(
    "mission_planned",
    { mission_id: id, source: "orchestrator" },
    {
      title: id,
      planner: null,
      plan: { waves: [{ wave: 1, tasks: [{ id: "a", agent: "builder", title: "a" }] }] },
    },
  );
const started = (id: string) =>
  makeEvent(
    "task_started",
    { mission_id: id, task_id: "a", source: "builder/b1" },
    { attempt: 1, worker: "builder/b1" },
  );
const ended = (id: string) =>
  makeEvent("mission_cancelled", { mission_id: id, source: "orchestrator" }, { reason: "enough" });

async function recorded(): Promise<Array<{ event: SquadEvent; seq: number }>> {
  const out: Array<{ event: SquadEvent; seq: number }> = [];
  for await (const { event, seq } of replayEvents(nc)) out.push({ event, seq });
  return out;
}

function pureFold(events: Array<{ event: SquadEvent; seq: number }>, id: string) {
  let s: MissionSummaryValue | undefined;
  for (const { event, seq } of events)
    if (event.mission_id === id) s = foldMissionEvent(s, event, seq);
  return s;
}

describe("the mission view's writer", () => {
  it("two writers over the same events converge on the pure fold; the index places every mission", async () => {
    const publisher = createPublisher(nc);
    for (const e of [
      planned("m1"),
      planned("m2"),
      started("m1"),
      planned("m3"),
      ended("m1"),
      started("m2"),
    ])
      await publisher.publish(e);
    const events = await recorded();
    const store = await openMissionViewStore(nc);
    const a = createMissionViewWriter({ store, log: silentLogger, fresh: true });
    const b = createMissionViewWriter({ store, log: silentLogger, fresh: true });
    // Interleaved: both see every event in order, their writes race on the same keys.
    for (const { event, seq } of events) {
      a.observe(event, seq);
      b.observe(event, seq);
    }
    await Promise.all([a.flush(), b.flush()]);
    for (const id of ["m1", "m2", "m3"])
      expect((await store.mission(id))?.value, id).toEqual(pureFold(events, id));
    const index = (await store.index())!.value;
    expect(index.active.map((x) => x.mission_id).sort()).toEqual(["m2", "m3"]);
    expect(index.finished).toEqual(["m1"]);
    expect(index.watermark).toBe(events.at(-1)!.seq);

    // m2 ends later; a new writer (a restarted orchestrator) reads m2 from the bucket and folds on.
    await publisher.publish(ended("m2"));
    const all = await recorded();
    const c = createMissionViewWriter({ store, log: silentLogger });
    const last = all.at(-1)!;
    c.observe(last.event, last.seq);
    await c.stop();
    await Promise.all([a.stop(), b.stop()]);
    expect((await store.mission("m2"))?.value).toEqual(pureFold(all, "m2"));
    expect((await store.mission("m2"))?.value.state).toBe("cancelled");
    const after = (await store.index())!.value;
    expect(after.active.map((x) => x.mission_id)).toEqual(["m3"]);
    expect(after.finished).toEqual(["m1", "m2"]);
    expect(after.watermark).toBe(last.seq);
  });
});
