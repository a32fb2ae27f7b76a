import { JetStreamApiError, jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  ALL_SUBJECTS,
  COORDINATION_SUBJECT,
  DlqRecord,
  STREAMS,
  decodeEvent,
  parseWith,
  type EventType,
  type SquadEvent,
} from "../schema/index.ts";
import type { ReceivedMessage } from "./event-guard.ts";
import { SQUAD_TYPE_HEADER } from "./publisher.ts";

export interface WatchOptions {
  /** Default `squad.>`: everything. */
  subject?: string;
  /** `msg`: the message as received, for the event guard's signature check. */
  onEvent: (event: SquadEvent, subject: string, msg: ReceivedMessage) => void;
  /**
   * Only events of these types reach onEvent; others are skipped, unread when
   * their Squad-Type header names the type (default: every type).
   */
  types?: readonly EventType[];
  /** A message that is not a valid event (default: a log line). */
  onInvalid?: (err: Error, subject: string, data: Uint8Array) => void;
  /** Records on `squad.dlq.*` are not events; without this handler they are skipped. */
  onDeadLetter?: (record: DlqRecord, subject: string) => void;
  log?: Logger;
}

export interface EventWatch {
  /** Resolves once the server has the subscription: nothing published after it is missed. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Live view of the bus over a core subscription (what `nats sub "squad.>"`
 * shows, decoded and validated). Live only: await `ready` before publishing
 * from another connection if the first events matter.
 */
export function watchEvents(nc: NatsConnection, opts: WatchOptions): EventWatch {
  const log = opts.log ?? silentLogger;
  const invalid =
    opts.onInvalid ??
    ((err: Error, subject: string) =>
      log.warn({ subject, err: err.message }, "invalid message on the bus"));
  const only = opts.types ? new Set<string>(opts.types) : null;
  const sub: Subscription = nc.subscribe(opts.subject ?? ALL_SUBJECTS, {
    callback: (err, msg) => {
      if (err) {
        log.error({ err: err.message }, "watch subscription failed");
        return;
      }
      if (msg.subject.startsWith("squad.dlq.")) {
        try {
          const record = parseWith(DlqRecord, msg.json(), "dead-letter record");
          opts.onDeadLetter?.(record, msg.subject);
        } catch (e) {
          invalid(e as Error, msg.subject, msg.data);
        }
        return;
      }
      if (only) {
        // Decoding and validating is most of a message's cost: skip what the header rules out.
        const type = msg.headers?.get(SQUAD_TYPE_HEADER);
        if (type && !only.has(type)) return;
      }
      let event: SquadEvent;
      try {
        event = decodeEvent(msg.data);
      } catch (e) {
        invalid(e as Error, msg.subject, msg.data);
        return;
      }
      if (only && !only.has(event.type)) return;
      try {
        opts.onEvent(event, msg.subject, msg);
      } catch (e) {
        // A throwing handler must not end the subscription for everything after it.
        log.error(
          { subject: msg.subject, id: event.id, err: (e as Error).message },
          "watch handler failed",
        );
      }
    },
  });
  const ready = nc.flush();
  ready.catch(() => undefined); // a caller that never awaits `ready` must not see an unhandled rejection
  return {
    ready,
    async stop() {
      if (nc.isClosed() || sub.isClosed()) return;
      await sub.drain().catch(() => sub.unsubscribe());
    },
  };
}

/** One stored event; `message` for the event guard's signature check. */
export interface ReplayedEvent {
  event: SquadEvent;
  seq: number;
  message: ReceivedMessage;
}

export interface ReplayOptions {
  /** Only this mission's events. */
  missionId?: string;
  /** First stream sequence to read. Default 1. */
  fromSeq?: number;
  /** Last stream sequence to read (e.g. a finished mission's last event). Default: the stream's last. */
  toSeq?: number;
  log?: Logger;
  /** Messages per pull. Default 256. */
  batch?: number;
}

/**
 * Ordered read of SQUAD_EVENTS from `fromSeq`, ending at the last message
 * stored when the call started (resume is "replay into the state machine").
 * Invalid messages are skipped with a log line.
 */
export async function* replayEvents(
  nc: NatsConnection,
  opts: ReplayOptions = {},
): AsyncGenerator<ReplayedEvent> {
  const log = opts.log ?? silentLogger;
  // No up-front API check: it needs a meta leader, reading a stream does not.
  const jsm = await openJetStreamManager(nc, { check: false });
  const state = (await jsm.streams.info(STREAMS.events)).state;
  const lastSeq = Math.min(state.last_seq, opts.toSeq ?? Infinity);
  const startSeq = Math.max(opts.fromSeq ?? 1, state.first_seq, 1);
  if (state.messages === 0 || startSeq > lastSeq) return;

  const consumer = await jetstream(nc).consumers.get(STREAMS.events, {
    opt_start_seq: startSeq,
    filter_subjects: COORDINATION_SUBJECT,
  });
  const batch = opts.batch ?? 256;
  try {
    let seen = startSeq - 1;
    while (seen < lastSeq) {
      const msgs = await consumer.fetch({ max_messages: batch, expires: 2000 });
      let got = 0;
      for await (const m of msgs) {
        got++;
        seen = m.seq;
        const item = decode(m, log);
        if (item && (!opts.missionId || item.event.mission_id === opts.missionId)) yield item;
        if (seen >= lastSeq) break;
      }
      // Nothing more within the pull's lifetime: the rest was removed (max_age) meanwhile.
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch((err: unknown) => {
      if (!(err instanceof JetStreamApiError))
        log.debug({ err: (err as Error).message }, "ordered consumer cleanup");
    });
  }
}

function decode(m: JsMsg, log: Logger): ReplayedEvent | null {
  try {
    return { event: decodeEvent(m.data), seq: m.seq, message: m };
  } catch (err) {
    log.warn(
      { seq: m.seq, err: (err as Error).message },
      "skipping an invalid message in SQUAD_EVENTS",
    );
    return null;
  }
}
