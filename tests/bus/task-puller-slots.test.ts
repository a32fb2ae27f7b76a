/**
 * The puller's capacity contract against a real nats-server: a replica holds
 * (has been delivered and not yet acked) at most `slots` tasks, however many
 * slots its pulls ask for at once, and a slot that frees is asked for again
 * at once. The server's own counts are the witness: num_ack_pending is what
 * it has delivered to the replica, num_waiting its open pull requests.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { createTaskPuller, ensureWorkerConsumer, type TaskDelivery } from "../../src/bus/index.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { useTaskBus } from "../helpers/task-bus.ts";

const bus = useTaskBus();

async function consumerState(agent: string) {
  const jsm = await jetstreamManager(bus.nc);
  const ci = await jsm.consumers.info("SQUAD_TASKS", `worker-${agent}`);
  return { pending: ci.num_pending, ackPending: ci.num_ack_pending, waiting: ci.num_waiting };
}

/** A handler that keeps each task until the test releases it (then acks). */
function gatedHandler() {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  let running = 0;
  let peak = 0;
  const handler = async (d: TaskDelivery) => {
    const id = d.event.payload.task.id;
    running++;
    peak = Math.max(peak, running);
    started.push(id);
    await new Promise<void>((resolve) => gates.set(id, resolve));
    running--;
    await d.ack();
  };
  const release = (ids: string[]) => {
    for (const id of ids) {
      const open = gates.get(id);
      if (!open) throw new Error(`task ${id} is not running`);
      gates.delete(id);
      open();
    }
  };
  return { handler, started, release, running: () => running, peak: () => peak };
}

describe("task puller slots", () => {
  it("holds no more tasks than its slots, and refills freed slots at once", async () => {
    const agent = "slots";
    await ensureWorkerConsumer(bus.nc, agent);
    for (let i = 0; i < 10; i++) await bus.publisher.publish(taskAssignedEvent(agent, `t${i}`));
    const h = gatedHandler();
    const p = createTaskPuller(await bus.connect("slots"), { agent, slots: 4 });
    bus.track(p);
    const run = p.run(h.handler);

    await vi.waitFor(() => expect(h.started).toHaveLength(4));
    // Long enough for any extra pull to be answered: nothing more may arrive.
    await sleep(300);
    expect(h.started).toHaveLength(4);
    expect(await consumerState(agent)).toEqual({ pending: 6, ackPending: 4, waiting: 0 });

    // One slot frees: one more task, and again nothing beyond the four slots.
    h.release([h.started[0]!]);
    await vi.waitFor(() => expect(h.started).toHaveLength(5));
    await sleep(200);
    expect(await consumerState(agent)).toEqual({ pending: 5, ackPending: 4, waiting: 0 });

    // Three free together (one pull may ask for all three): refilled to four, no more.
    h.release(h.started.slice(1, 4));
    await vi.waitFor(() => expect(h.started).toHaveLength(8));
    await sleep(200);
    expect(h.started).toHaveLength(8);
    expect(await consumerState(agent)).toEqual({ pending: 2, ackPending: 4, waiting: 0 });

    // The queue runs dry: the free slots wait in pull requests, the last tasks still run.
    h.release(h.started.slice(4, 8));
    await vi.waitFor(() => expect(h.started).toHaveLength(10));
    h.release(h.started.slice(8, 10));
    await vi.waitFor(async () =>
      expect(await consumerState(agent)).toMatchObject({ pending: 0, ackPending: 0 }),
    );
    const idle = await consumerState(agent);
    expect(idle.waiting).toBeGreaterThanOrEqual(1);
    expect(idle.waiting).toBeLessThanOrEqual(4);

    await p.stop();
    await run;
    expect(new Set(h.started).size).toBe(10);
    expect(h.peak()).toBe(4);
  });

  it("asks again after its pulls expire, still for its free slots only", async () => {
    const agent = "expiry";
    await ensureWorkerConsumer(bus.nc, agent);
    const h = gatedHandler();
    const p = createTaskPuller(await bus.connect("expiry"), { agent, slots: 2, expiresMs: 1000 });
    bus.track(p);
    const run = p.run(h.handler);
    // Idle past two pull lifetimes: the pulls expire and are asked again.
    await sleep(2500);
    expect(h.started).toEqual([]);
    for (let i = 0; i < 5; i++) await bus.publisher.publish(taskAssignedEvent(agent, `e${i}`));

    await vi.waitFor(() => expect(h.started).toHaveLength(2));
    await sleep(300);
    expect(h.started).toHaveLength(2);
    expect(await consumerState(agent)).toEqual({ pending: 3, ackPending: 2, waiting: 0 });

    // Each freed slot is asked for again, one at a time.
    for (let n = 3; n <= 5; n++) {
      h.release([h.started[n - 3]!]);
      await vi.waitFor(() => expect(h.started).toHaveLength(n));
      expect((await consumerState(agent)).ackPending).toBeLessThanOrEqual(2);
    }
    h.release(h.started.slice(3));
    await vi.waitFor(async () =>
      expect(await consumerState(agent)).toMatchObject({ pending: 0, ackPending: 0 }),
    );
    await p.stop();
    await run;
    expect(new Set(h.started).size).toBe(5);
    expect(h.peak()).toBe(2);
  });

  it("keeps many slots busy from one queue: all run at once, each task once", async () => {
    const agent = "wide";
    await ensureWorkerConsumer(bus.nc, agent);
    const slots = 32;
    const h = gatedHandler();
    const p = createTaskPuller(await bus.connect("wide"), { agent, slots });
    bus.track(p);
    const run = p.run(h.handler);
    await Promise.all(
      Array.from({ length: 3 * slots }, (_, i) =>
        bus.publisher.publish(taskAssignedEvent(agent, `w${i}`)),
      ),
    );
    // Three rounds: every slot busy each time, freed all together, refilled all together.
    for (let round = 1; round <= 3; round++) {
      await vi.waitFor(() => expect(h.started).toHaveLength(round * slots), { timeout: 10_000 });
      expect(h.running()).toBe(slots);
      expect((await consumerState(agent)).ackPending).toBe(slots);
      h.release(h.started.slice((round - 1) * slots));
    }
    await vi.waitFor(async () =>
      expect(await consumerState(agent)).toMatchObject({ pending: 0, ackPending: 0 }),
    );
    await p.stop();
    await run;
    expect(new Set(h.started).size).toBe(3 * slots);
    expect(h.peak()).toBe(slots);
  });
});
