/**
 * Benchmark 1, the limit: raw JetStream on this machine with the same client
 * library (@nats-io/jetstream), shaped like ours (a work-queue stream, file
 * storage, a durable pull consumer with explicit ack) but raw bytes: no
 * schemas, no events, no KV claim, no process spawn.
 */
import { randomBytes } from "node:crypto";
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type JetStreamClient,
} from "@nats-io/jetstream";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import type { Figure, Section } from "./results.ts";
import { startBenchNatsServer } from "./nats-server.ts";
import { ratePerSecond, summarize, type LatencySummary } from "./stats.ts";

export interface RawOptions {
  latencySamples: number;
  throughputMessages: number;
  /** Slots of the one-message-pull variant (as a worker replica pulls). */
  pullSlots: number;
  payloadBytes: number;
}

export interface RawFigures {
  /** publish → message delivered to the waiting pull (one way). */
  deliver: LatencySummary;
  /** publish → pull → ackAck confirmed: the round trip. */
  roundTrip: LatencySummary;
  /** msg/s, publisher pipelined, consumer batched (consume()). */
  throughput: number;
  /** msg/s, one-message pulls with ackAck on `pullSlots` slots (our worker's discipline). */
  singlePullThroughput: number;
}

const STREAM = "RAW_TASKS";
const SUBJECT = "raw.tasks.builder";

async function setUp(nc: NatsConnection, durable: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: STREAM,
    subjects: ["raw.tasks.*"],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: 1,
  });
  await jsm.consumers.add(STREAM, {
    durable_name: durable,
    filter_subject: SUBJECT,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_ack_pending: 10_000,
  });
}

async function measureLatency(
  js: JetStreamClient,
  consumerNc: NatsConnection,
  consumer: Consumer,
  samples: number,
  payload: Uint8Array,
): Promise<{ deliver: number[]; roundTrip: number[] }> {
  const deliver: number[] = [];
  const roundTrip: number[] = [];
  const warmup = Math.min(100, Math.ceil(samples / 10));
  for (let i = 0; i < samples + warmup; i++) {
    // The pull is outstanding before the publish, as a worker's idle slot is.
    const iter = await consumer.fetch({ max_messages: 1, expires: 5000 });
    await consumerNc.flush();
    const t0 = performance.now();
    const got = (async () => {
      for await (const m of iter) {
        const t1 = performance.now();
        await m.ackAck();
        return [t1, performance.now()] as const;
      }
      throw new Error("the pull expired without the message");
    })();
    await js.publish(SUBJECT, payload);
    const [t1, t2] = await got;
    if (i >= warmup) {
      deliver.push(t1 - t0);
      roundTrip.push(t2 - t0);
    }
  }
  return { deliver, roundTrip };
}

/** Publisher with `window` publishes in flight; resolves when all are acknowledged. */
async function publishMany(
  js: JetStreamClient,
  n: number,
  payload: Uint8Array,
  window = 512,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      await js.publish(SUBJECT, payload);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
}

async function measureBatchedThroughput(
  js: JetStreamClient,
  consumer: Consumer,
  n: number,
  payload: Uint8Array,
): Promise<number> {
  const messages = await consumer.consume({ max_messages: 512, expires: 5000 });
  let received = 0;
  const t0 = performance.now();
  let tLast = t0;
  const consumed = (async () => {
    for await (const m of messages) {
      m.ack();
      if (++received >= n) {
        tLast = performance.now();
        break;
      }
    }
  })();
  await publishMany(js, n, payload);
  await consumed;
  await messages.close();
  return ratePerSecond(n, tLast - t0);
}

async function measureSinglePullThroughput(
  js: JetStreamClient,
  consumer: Consumer,
  n: number,
  slots: number,
  payload: Uint8Array,
): Promise<number> {
  let received = 0;
  const t0 = performance.now();
  let tLast = t0;
  const slot = async () => {
    while (received < n) {
      const m = await consumer.next({ expires: 2000 });
      if (!m) continue;
      await m.ackAck();
      if (++received >= n) tLast = performance.now();
    }
  };
  const pullers = Array.from({ length: slots }, slot);
  await publishMany(js, n, payload);
  await Promise.all(pullers);
  return ratePerSecond(n, tLast - t0);
}

export async function rawJetStream(opts: RawOptions): Promise<RawFigures> {
  const server = await startBenchNatsServer();
  const pubNc = await connect({ servers: server.url, name: "bench-raw-publisher" });
  const subNc = await connect({ servers: server.url, name: "bench-raw-consumer" });
  try {
    await setUp(pubNc, "raw-worker");
    const js = jetstream(pubNc);
    const consumer = await jetstream(subNc).consumers.get(STREAM, "raw-worker");
    const payload = new Uint8Array(randomBytes(opts.payloadBytes));
    const lat = await measureLatency(js, subNc, consumer, opts.latencySamples, payload);
    const throughput = await measureBatchedThroughput(
      js,
      consumer,
      opts.throughputMessages,
      payload,
    );
    const singlePullThroughput = await measureSinglePullThroughput(
      js,
      consumer,
      Math.ceil(opts.throughputMessages / 4),
      opts.pullSlots,
      payload,
    );
    return {
      deliver: summarize(lat.deliver),
      roundTrip: summarize(lat.roundTrip),
      throughput,
      singlePullThroughput,
    };
  } finally {
    await pubNc.close();
    await subNc.close();
    await server.stop();
  }
}

export function rawSection(r: RawFigures, opts: RawOptions, durationMs: number): Section {
  const ms = (key: string, name: string, value: number): Figure => ({
    key,
    name,
    value,
    unit: "ms",
  });
  return {
    id: "raw",
    title: "1. The limit: raw JetStream",
    durationMs,
    figures: [
      ms("raw.rtt.p50", "publish → pull → ack round trip, p50", r.roundTrip.p50),
      ms("raw.rtt.p99", "publish → pull → ack round trip, p99", r.roundTrip.p99),
      ms("raw.deliver.p50", "publish → delivered to the waiting pull, p50", r.deliver.p50),
      ms("raw.deliver.p99", "publish → delivered to the waiting pull, p99", r.deliver.p99),
      {
        key: "raw.throughput",
        name: "throughput, pipelined publish + batched consume",
        value: r.throughput,
        unit: "msg/s",
      },
      {
        key: "raw.throughput.single",
        name: `throughput, one-message pulls + ackAck on ${opts.pullSlots} slots`,
        value: r.singlePullThroughput,
        unit: "msg/s",
        reference: { label: "raw batched throughput", value: r.throughput, unit: "msg/s" },
        ratio: r.singlePullThroughput / r.throughput,
      },
    ],
    notes: [
      `Work-queue stream on file storage, durable pull consumer with explicit ack, ` +
        `${opts.payloadBytes}-byte payloads, publisher and consumer on separate connections ` +
        `in one process. Latency: ${r.roundTrip.n} sequential round trips after a warm-up; ` +
        `the pull is outstanding before each publish (as an idle worker slot's is). ` +
        `Throughput: ${opts.throughputMessages} messages, up to 512 publishes in flight.`,
      "These are the references of the figures below: the same machine, the same run, the same client library.",
    ],
  };
}
