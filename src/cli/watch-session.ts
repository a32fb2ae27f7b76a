/**
 * The event stream behind `swarm watch`: optionally the recorded history of
 * SQUAD_EVENTS first, then everything live, in order and without seams.
 *
 * - Live, every message on squad.> comes from one core subscription, so lines
 *   appear in the order the server routed them (what `nats sub "squad.>"`
 *   shows). It starts before the replay; what arrives during the replay is
 *   held back and shown right after it.
 * - Lifecycle events (squad.coordination) also come from SQUAD_EVENTS: the
 *   replay up to now, then an ordered consumer from the sequence the replay
 *   started at. The consumer survives reconnects, so an event published while
 *   the core subscription was down is still shown (a watcher waiting for a
 *   mission's end never misses it). Each event id is shown once, from
 *   whichever source brings it first.
 * - task_assigned (squad.tasks.*), status events and dead letters are live only.
 * - Invalid messages are reported from the core subscription, on any subject.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  followEvents,
  openJetStreamManager,
  replayEvents,
  watchEvents,
  type EventFeed,
  type StreamOptions,
} from "../bus/index.ts";
import { silentLogger, type Logger } from "../log.ts";
import { COORDINATION_SUBJECT, STREAMS, type DlqRecord, type SquadEvent } from "../schema/index.ts";
import { ensureStreamsUsable } from "../bus/streams-usable.ts";
import { hasJsCode, JS_CODES } from "../bus/index.ts";

export type WatchItem =
  | { kind: "event"; event: SquadEvent; subject: string; replayed: boolean }
  | { kind: "dead_letter"; record: DlqRecord; subject: string }
  | { kind: "invalid"; error: Error; subject: string; data: Uint8Array };

export interface WatchSessionOptions {
  /** Replay only this mission's history (live items are not filtered here). */
  missionId?: string;
  /** Show the recorded history first. */
  replay: boolean;
  onItem: (item: WatchItem) => void;
  /** Used to create the streams when SQUAD_EVENTS does not exist yet. */
  streams?: StreamOptions;
  log?: Logger;
  /** Lifecycle event ids remembered to show each once. Default 50,000. */
  dedupeWindow?: number;
}

export interface WatchSession {
  /** Resolves once the replay is shown and the live part runs. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

export async function startWatchSession(
  nc: NatsConnection,
  opts: WatchSessionOptions,
): Promise<WatchSession> {
  const log = opts.log ?? silentLogger;
  const shown = new RecentIds(opts.dedupeWindow ?? 50_000);
  let live = false;
  const held: WatchItem[] = [];
  const deliver = (item: WatchItem) => {
    if (item.kind === "event" && item.subject === COORDINATION_SUBJECT) {
      if (!shown.add(item.event.id)) return;
    }
    opts.onItem(item);
  };
  const emit = (item: WatchItem) => {
    if (live) deliver(item);
    else held.push(item);
  };

  const sub = watchEvents(nc, {
    log,
    onEvent: (event, subject) => emit({ kind: "event", event, subject, replayed: false }),
    onDeadLetter: (record, subject) => emit({ kind: "dead_letter", record, subject }),
    onInvalid: (error, subject, data) => emit({ kind: "invalid", error, subject, data }),
  });
  let feed: EventFeed | null = null;

  const ready = (async () => {
    await sub.ready;
    const fromSeq = await nextSeq(nc, opts.streams ?? {}, log);
    if (opts.replay) {
      for await (const { event } of replayEvents(nc, {
        fromSeq: 1,
        ...(opts.missionId ? { missionId: opts.missionId } : {}),
      })) {
        deliver({ kind: "event", event, subject: COORDINATION_SUBJECT, replayed: true });
      }
    }
    for (const item of held.splice(0)) deliver(item);
    live = true;
    feed = await followEvents(nc, {
      fromSeq,
      onEvent: (event) =>
        deliver({ kind: "event", event, subject: COORDINATION_SUBJECT, replayed: false }),
    });
  })();
  ready.catch(() => undefined);

  return {
    ready,
    async stop() {
      await ready.catch(() => undefined);
      await feed?.stop();
      await sub.stop();
    },
  };
}

/** The last `max` ids seen (insertion order), to show each event once. */
class RecentIds {
  private readonly ids = new Set<string>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  /** false when `id` was seen already. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value!);
    return true;
  }
}

/** The next sequence of SQUAD_EVENTS; creates the streams on a server that has none yet. */
async function nextSeq(nc: NatsConnection, streams: StreamOptions, log: Logger): Promise<number> {
  const jsm = await openJetStreamManager(nc);
  try {
    return (await jsm.streams.info(STREAMS.events)).state.last_seq + 1;
  } catch (err) {
    if (!hasJsCode(err, JS_CODES.streamNotFound)) throw err;
    log.info("no squad streams yet; creating them");
    await ensureStreamsUsable(nc, { ...streams, log });
    return (await jsm.streams.info(STREAMS.events)).state.last_seq + 1;
  }
}
