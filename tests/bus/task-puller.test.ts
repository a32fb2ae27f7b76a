import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  createTaskPuller,
  ensureWorkerConsumer,
  type TaskDelivery,
  type TaskPuller,
} from "../../src/bus/index.ts";
import { InfrastructureError } from "../../src/errors.ts";
import { DlqRecord, makeEvent } from "../../src/schema/index.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { useTaskBus } from "../helpers/task-bus.ts";

const bus = useTaskBus();
const track = (p: TaskPuller) => bus.track(p);

async function consumerState(agent: string) {
  const jsm = await jetstreamManager(bus.nc);
  const ci = await jsm.consumers.info("SQUAD_TASKS", `worker-${agent}`);
  return {
    pending: ci.num_pending,
    ackPending: ci.num_ack_pending,
    redelivered: ci.num_redelivered,
  };
}

describe("task puller", () => {
  it("spreads 300 tasks over 3 replicas, each handled exactly once", async () => {
    const agent = "fanout";
    await ensureWorkerConsumer(bus.nc, agent);
    const handled: { replica: number; task: string; delivery: number }[] = [];
    const runs: Promise<void>[] = [];
    for (let r = 0; r < 3; r++) {
      const p = track(createTaskPuller(await bus.connect(`fanout-${r}`), { agent, slots: 2 }));
      runs.push(
        p.run(async (d) => {
          handled.push({ replica: r, task: d.event.payload.task.id, delivery: d.deliveryCount });
          await sleep(2);
          await d.ack();
        }),
      );
    }
    for (let i = 0; i < 300; i++) await bus.publisher.publish(taskAssignedEvent(agent, `t${i}`));

    await vi.waitFor(() => expect(handled.length).toBeGreaterThanOrEqual(300), {
      timeout: 30_000,
      interval: 50,
    });
    await Promise.all(bus.pullers.slice(-3).map((p) => p.stop()));
    await Promise.all(runs);

    expect(handled).toHaveLength(300);
    expect(new Set(handled.map((h) => h.task)).size).toBe(300);
    expect(handled.every((h) => h.delivery === 1)).toBe(true);
    for (let r = 0; r < 3; r++)
      expect(handled.filter((h) => h.replica === r).length).toBeGreaterThan(0);
    expect(await consumerState(agent)).toEqual({ pending: 0, ackPending: 0, redelivered: 0 });
  });

  it("redelivers a task to another replica when the one holding it dies without acking", async () => {
    const agent = "crash";
    await ensureWorkerConsumer(bus.nc, agent, { ackWaitMs: 2000 });
    const doomedNc = await bus.connect("crash-doomed");
    const doomed = track(createTaskPuller(doomedNc, { agent, slots: 1 }));
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    let taken: TaskDelivery | null = null;
    const doomedRun = doomed.run(async (d) => {
      taken = d;
      await stuck; // "dies" mid-task
    });
    await bus.publisher.publish(taskAssignedEvent(agent, "t-crash"));
    await vi.waitFor(() => expect(taken).not.toBeNull());
    await doomedNc.close(); // the process is gone: no ack, no more working()
    release();
    await expect(doomedRun).rejects.toBeInstanceOf(InfrastructureError);

    const done: TaskDelivery[] = [];
    const survivor = track(
      createTaskPuller(await bus.connect("crash-survivor"), { agent, slots: 1 }),
    );
    const run = survivor.run(async (d) => {
      done.push(d);
      await d.ack();
    });
    await vi.waitFor(() => expect(done).toHaveLength(1), { timeout: 10_000, interval: 50 });
    await survivor.stop();
    await run;
    expect(done[0]!.event.payload.task.id).toBe("t-crash");
    expect(done[0]!.deliveryCount).toBe(2);
    expect(await consumerState(agent)).toMatchObject({ pending: 0, ackPending: 0 });
  });

  it("keeps a task that runs longer than ack_wait while working() ticks", async () => {
    const agent = "slow";
    await ensureWorkerConsumer(bus.nc, agent, { ackWaitMs: 1500 });
    const deliveries: { replica: string; delivery: number }[] = [];
    const handler = (replica: string) => async (d: TaskDelivery) => {
      deliveries.push({ replica, delivery: d.deliveryCount });
      await sleep(4000); // well past ack_wait; only the automatic working() keeps it
      await d.ack();
    };
    const a = track(createTaskPuller(await bus.connect("slow-a"), { agent, slots: 1 }));
    const b = track(createTaskPuller(await bus.connect("slow-b"), { agent, slots: 1 }));
    const runs = [a.run(handler("a")), b.run(handler("b"))];
    await bus.publisher.publish(taskAssignedEvent(agent, "t-slow"));
    await vi.waitFor(() => expect(deliveries).toHaveLength(1));
    await vi.waitFor(
      async () => expect(await consumerState(agent)).toMatchObject({ ackPending: 0 }),
      {
        timeout: 10_000,
        interval: 100,
      },
    );
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all(runs);
    expect(deliveries).toEqual([{ replica: expect.any(String), delivery: 1 }]);
    expect(await consumerState(agent)).toEqual({ pending: 0, ackPending: 0, redelivered: 0 });
  });

  it("naks a failing handler with backoff, and dead-letters it when deliveries run out", async () => {
    const agent = "flaky";
    await ensureWorkerConsumer(bus.nc, agent, { maxDeliver: 2 });
    const seen: { task: string; delivery: number; last: boolean }[] = [];
    const p = track(
      createTaskPuller(await bus.connect("flaky"), { agent, slots: 1, nakDelayMs: () => 200 }),
    );
    const run = p.run(async (d) => {
      const task = d.event.payload.task.id;
      seen.push({ task, delivery: d.deliveryCount, last: d.isLastDelivery });
      if (task === "t-doomed" || d.deliveryCount === 1) throw new Error("model server down");
      await d.ack();
    });
    await bus.publisher.publish(taskAssignedEvent(agent, "t-flaky"));
    await bus.publisher.publish(taskAssignedEvent(agent, "t-doomed"));
    const jsm = await jetstreamManager(bus.nc);
    const dlqCount = async () =>
      (await jsm.streams.info("SQUAD_DLQ", { subjects_filter: "squad.dlq.flaky" })).state
        .subjects?.["squad.dlq.flaky"] ?? 0;
    await vi.waitFor(async () => expect(await dlqCount()).toBe(1), { timeout: 10_000 });
    await p.stop();
    await run;
    const byTask = (t: string) => seen.filter((s) => s.task === t).map(({ task: _, ...s }) => s);
    expect(byTask("t-flaky")).toEqual([
      { delivery: 1, last: false },
      { delivery: 2, last: true },
    ]);
    expect(byTask("t-doomed")).toEqual([
      { delivery: 1, last: false },
      { delivery: 2, last: true },
    ]);
    const last = await jsm.streams.getMessage("SQUAD_DLQ", { last_by_subj: "squad.dlq.flaky" });
    const record = DlqRecord.parse(last!.json());
    expect(record.reason).toMatch(/deliveries exhausted \(2 of 2\).*model server down/);
    expect(record.delivery_count).toBe(2);
    expect(await consumerState(agent)).toMatchObject({ pending: 0, ackPending: 0 });
    expect(
      (await jsm.streams.info("SQUAD_TASKS", { subjects_filter: "squad.tasks.flaky" })).state
        .subjects?.["squad.tasks.flaky"] ?? 0,
    ).toBe(0);
  });

  it("dead-letters poison messages with their reason and never delivers them again", async () => {
    const agent = "poison";
    await ensureWorkerConsumer(bus.nc, agent, { ackWaitMs: 1000 });
    const js = jetstream(bus.nc);
    const subject = "squad.tasks.poison";
    const invalidTask = structuredClone(taskAssignedEvent(agent, "t-invalid")) as {
      payload: { task: Record<string, unknown> };
    };
    delete invalidTask.payload.task.title;
    const poison: Array<[Uint8Array | string, RegExp]> = [
      ["this is not json {", /not JSON/],
      [JSON.stringify(invalidTask), /payload\.task\.title/],
      [
        JSON.stringify(
          makeEvent("wave_started", { mission_id: "m1", source: "x" }, { wave: 1, task_ids: [] }),
        ),
        /wave_started/,
      ],
      [JSON.stringify(taskAssignedEvent("someone-else", "t-misrouted")), /someone-else/],
      // Valid by the schema (mission_id may be null on events), but a task needs its mission.
      [
        JSON.stringify({ ...taskAssignedEvent(agent, "t-orphan"), mission_id: null }),
        /task t-orphan has no mission_id/,
      ],
      [new Uint8Array([0xff, 0xfe, 0x00, 0x41]), /not JSON/],
    ];
    const seqs: number[] = [];
    for (const [data] of poison) seqs.push((await js.publish(subject, data)).seq);
    await bus.publisher.publish(taskAssignedEvent(agent, "t-good"));

    const handled: string[] = [];
    const p = track(createTaskPuller(await bus.connect("poison"), { agent, slots: 2 }));
    const run = p.run(async (d) => {
      handled.push(d.event.payload.task.id);
    });
    await vi.waitFor(() => expect(handled).toEqual(["t-good"]), { timeout: 10_000 });
    const jsm = await jetstreamManager(bus.nc);
    await vi.waitFor(async () =>
      expect(
        (await jsm.streams.info("SQUAD_DLQ", { subjects_filter: "squad.dlq.poison" })).state
          .subjects?.["squad.dlq.poison"] ?? 0,
      ).toBe(poison.length),
    );
    // Longer than ack_wait: a message that was merely left unacked would be back by now.
    await sleep(1500);
    await p.stop();
    await run;

    expect(handled).toEqual(["t-good"]);
    expect(await consumerState(agent)).toEqual({ pending: 0, ackPending: 0, redelivered: 0 });
    expect(
      (await jsm.streams.info("SQUAD_TASKS", { subjects_filter: subject })).state.subjects?.[
        subject
      ] ?? 0,
    ).toBe(0);

    const records: DlqRecord[] = [];
    const lastSeq = (await jsm.streams.info("SQUAD_DLQ")).state.last_seq;
    for (let seq = 1; seq <= lastSeq; seq++) {
      const m = await jsm.streams.getMessage("SQUAD_DLQ", { seq });
      if (m?.subject !== "squad.dlq.poison") continue;
      expect(m.header.get("Nats-Msg-Id")).toMatch(/^dlq-tasks-[a-z0-9_-]+-\d+$/);
      records.push(DlqRecord.parse(m.json()));
    }
    records.sort((x, y) => x.stream_seq - y.stream_seq);
    expect(records.map((r) => r.stream_seq)).toEqual(seqs);
    poison.forEach(([data, reason], i) => {
      const r = records[i]!;
      expect(r.reason).toMatch(reason);
      expect(r.agent).toBe(agent);
      expect(r.subject).toBe(subject);
      expect(r.delivery_count).toBe(1);
      if (typeof data === "string") {
        expect(r.data).toBe(data);
        expect(r.data_base64).toBeUndefined();
      } else {
        expect(Buffer.from(r.data_base64!, "base64")).toEqual(Buffer.from(data));
      }
    });
  });

  it("refuses to run without its consumer, with a hint", async () => {
    const p = createTaskPuller(await bus.connect("orphan"), { agent: "nobody", slots: 1 });
    const err = await p.run(async () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).hint).toMatch(/worker-nobody/);
  });
});
