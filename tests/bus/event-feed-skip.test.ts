/**
 * followEvents' skipTypes: events of a skipped type never reach onEvent,
 * whether their Squad-Type header says so (skipped unread) or lies about
 * them (decoded, validated, then skipped); everything else arrives in order.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import pino from "pino";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import {
  connectBus,
  createPublisher,
  followEvents,
  provisionStreams,
  SQUAD_TYPE_HEADER,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { COORDINATION_SUBJECT, makeEvent, type SquadEvent } from "../../src/schema/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "feed-skip-test" });
  await provisionStreams(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

const fields = (id: string) => ({ id, mission_id: "m-skip", task_id: "t1", source: "builder/a" });

describe("followEvents skipTypes", () => {
  it("skips the named types, by header or after decoding, and delivers the rest in order", async () => {
    const publisher = createPublisher(nc);
    const step = {
      tool: "run_shell",
      args: {},
      ok: true,
      exit_code: 0,
      duration_ms: 1,
      output: "",
    };
    await publisher.publish(
      makeEvent("task_started", fields("s1"), { attempt: 1, worker: "builder/a" }),
    );
    await publisher.publish(
      makeEvent("task_progress", fields("p1"), { attempt: 1, worker: "builder/a", step }),
    );
    // A progress event whose header claims another type: decoded, then skipped all the same.
    const lying = makeEvent("task_progress", fields("p2"), {
      attempt: 1,
      worker: "builder/a",
      step,
    });
    const h = headers();
    h.set(SQUAD_TYPE_HEADER, "task_started");
    await jetstream(nc).publish(COORDINATION_SUBJECT, JSON.stringify(lying), {
      msgID: lying.id,
      headers: h,
    });
    // A message that is not a valid event at all but claims a skipped type: never read.
    const bogus = headers();
    bogus.set(SQUAD_TYPE_HEADER, "task_progress");
    await jetstream(nc).publish(COORDINATION_SUBJECT, "not json", { headers: bogus });
    await publisher.publish(
      makeEvent("wave_completed", fields("w1"), { wave: 1, succeeded: ["t1"], failed: [] }),
    );

    const warnings: string[] = [];
    const log = pino(
      { level: "warn" },
      { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) },
    );
    const got: SquadEvent[] = [];
    const seqs: number[] = [];
    const feed = await followEvents(nc, {
      fromSeq: 1,
      skipTypes: ["task_progress"],
      log,
      onEvent: (e, seq) => {
        got.push(e);
        seqs.push(seq);
      },
    });
    try {
      await vi.waitFor(() => expect(got.map((e) => e.id)).toEqual(["s1", "w1"]), {
        timeout: 10_000,
        interval: 50,
      });
      expect(seqs).toEqual([1, 5]);
      // The invalid message was skipped by its header, never decoded (else: a warning).
      expect(warnings).toEqual([]);
    } finally {
      await feed.stop();
    }
  });
});
