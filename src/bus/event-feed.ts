import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { backoffDelay } from "../backoff.ts";
import { errorMessage } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import {
  COORDINATION_SUBJECT,
  decodeEvent,
  STREAMS,
  type EventType,
  type SquadEvent,
} from "../schema/index.ts";
import type { ReceivedMessage } from "./event-guard.ts";
import { SQUAD_TYPE_HEADER } from "./publisher.ts";

export interface EventFeedOptions {
  /** First stream sequence to deliver (e.g. the last replayed one + 1). */
  fromSeq: number;
  /**
   * `msg` is the message as received: `contextOf(msg)` (src/telemetry) is
   * the trace context its publisher sent with it.
   */
  onEvent: (event: SquadEvent, seq: number, msg: ReceivedMessage) => void;
  /**
   * Checked before onEvent, in stream order (the next event waits for it):
   * false drops the event (the event guard's check; it logs and counts).
   */
  admit?: (event: SquadEvent, msg: ReceivedMessage) => boolean | Promise<boolean>;
  /**
   * Events of these types are skipped unread when their Squad-Type header
   * names the type (decoding and validating is most of an event's cost);
   * one whose header is missing or wrong is decoded, and skipped if it is one.
   */
  skipTypes?: readonly EventType[];
  log?: Logger;
}

export interface EventFeed {
  stop(): Promise<void>;
}

/** How often a feed that delivered nothing checks whether the stream has more than it got. */
const STALL_CHECK_MS = 5000;

/**
 * Lifetime of one pull of the feed. The client's idle-heartbeat check is half
 * of it, and it re-pulls after two missed heartbeats: a feed whose pull the
 * server lost (a restart) is moving again within this much time.
 */
const PULL_EXPIRES_MS = 5000;

/**
 * Follows SQUAD_EVENTS from `fromSeq` with an ordered consumer: every
 * lifecycle event exactly once and in order, across reconnects and server
 * restarts. Unlike a core subscription, nothing published while the
 * connection was down is missed. Invalid messages are logged and skipped.
 *
 * After a server restart the client re-creates the ordered consumer itself,
 * but keeps the old pull's pending count, so the new consumer is asked for
 * only a few messages and then stalls until two idle heartbeats are missed
 * (half a minute with the default pull). So when the client reports the
 * consumer re-created, the feed opens a fresh one from the sequence after
 * the last event it delivered: nothing is skipped or repeated.
 *
 * The client can also wait without a word: on a cluster, when the node that
 * held the ordered consumer dies and the API keeps timing out on it (seen
 * on 2.9.10 with a stream scaled from R1 to R3), it retries forever. So a
 * watchdog asks the stream, every STALL_CHECK_MS, for its last sequence:
 * events the feed has not delivered at two checks in a row, with nothing
 * delivered in between, mean a stalled consumer, and the feed re-opens too.
 */
export async function followEvents(nc: NatsConnection, opts: EventFeedOptions): Promise<EventFeed> {
  const log = opts.log ?? silentLogger;
  let next = Math.max(1, opts.fromSeq);
  let stopped = false;

  const open = async (): Promise<ConsumerMessages> => {
    const consumer = await jetstream(nc).consumers.get(STREAMS.events, {
      opt_start_seq: next,
      filter_subjects: COORDINATION_SUBJECT,
    });
    return consumer.consume({ max_messages: 512, expires: PULL_EXPIRES_MS });
  };

  // The first open fails loudly (no stream, no JetStream); later ones are retried.
  let messages = await open();
  let delivered = 0;
  let reopen = false;

  const skip = opts.skipTypes?.length ? new Set<string>(opts.skipTypes) : null;
  const deliver = async (m: ReceivedMessage, seq: number) => {
    let event: SquadEvent;
    try {
      event = decodeEvent(m.data);
    } catch (err) {
      log.warn({ seq, err: errorMessage(err) }, "skipping an invalid message in SQUAD_EVENTS");
      return;
    }
    if (skip?.has(event.type)) return;
    try {
      if (opts.admit && !(await opts.admit(event, m))) return;
    } catch (err) {
      log.error({ seq, err: errorMessage(err) }, "event check failed; event dropped");
      return;
    }
    try {
      opts.onEvent(event, seq, m);
    } catch (err) {
      log.error({ seq, err: errorMessage(err) }, "event handler failed");
    }
  };

  const jsm = await openJetStreamManager(nc, { check: false });
  let suspect: number | null = null;
  let checking = false;
  const watchdog = setInterval(() => {
    if (checking || stopped || reopen) return;
    checking = true;
    jsm.streams
      .info(STREAMS.events)
      .then((info) => {
        const behind = info.state.last_seq >= next;
        if (behind && suspect === delivered) {
          log.warn(
            { next_seq: next, last_seq: info.state.last_seq },
            "event feed stalled; re-opening it",
          );
          reopen = true;
          messages.stop();
        }
        suspect = behind ? delivered : null;
      })
      .catch(() => undefined) // the server is busy (an election): next round
      .finally(() => (checking = false));
  }, STALL_CHECK_MS);
  watchdog.unref();

  const loop = (async () => {
    while (!stopped) {
      const current = messages;
      reopen = false;
      suspect = null;
      void (async () => {
        for await (const s of current.status()) {
          if (s.type === "ordered_consumer_recreated") {
            log.info({ from_seq: next }, "event feed re-opened after its consumer was re-created");
            reopen = true;
            current.stop();
            return;
          }
        }
      })().catch(() => undefined);
      for await (const m of current) {
        next = m.seq + 1;
        delivered++;
        if (skip) {
          const type = m.headers?.get(SQUAD_TYPE_HEADER);
          if (type && skip.has(type)) continue;
        }
        await deliver(m, m.seq);
      }
      if (stopped || !reopen || nc.isClosed()) return;
      for (let attempt = 1; !stopped; attempt++) {
        try {
          messages = await open();
          if (stopped) messages.stop();
          break;
        } catch (err) {
          if (nc.isClosed()) return;
          log.warn({ err: errorMessage(err), attempt }, "event feed not re-opened yet; retrying");
          await sleep(backoffDelay(attempt, 250, 5000));
        }
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      messages.stop();
      await loop.catch(() => undefined);
    },
  };
}
