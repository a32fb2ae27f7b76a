/**
 * The dashboard's side of the bus: what it reads, with the watcher's
 * permissions only. At (re)start the mission list from the mission view (KV
 * squad_mission_view) and the events of the unfinished missions only (a
 * finished mission's events are read when its page is opened), the last
 * status of every replica in SQUAD_STATUS, the pending submissions, consumer
 * counts; then live: lifecycle events from an ordered consumer (nothing is
 * missed across a NATS restart), status events, task_assigned and dead
 * letters from a core subscription, consumer and DLQ counts polled. A
 * dashboard started with NATS down keeps trying, and says so meanwhile.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  followEvents,
  openJetStreamManager,
  countPerAgent,
  readSwarmSnapshot,
  replayEvents,
  readWorkerConsumers,
  watchEvents,
  type EventFeed,
  type EventWatch,
  type NatsConnection,
  type WorkerConsumerStats,
} from "../bus/index.ts";
import { backoffDelay } from "../backoff.ts";
import { errorMessage } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  DlqRecord,
  STREAMS,
  parseWith,
  resumeFrom,
  type MissionSummaryValue,
  type SquadEvent,
} from "../schema/index.ts";

export type NatsState =
  | { state: "connecting"; detail: string }
  | { state: "up"; detail: string }
  | { state: "down"; detail: string };

export interface AgentLoad {
  consumers: WorkerConsumerStats[];
  deadLetters: Record<string, number>;
}

export interface SwarmFeedOptions {
  /** A connection with the watcher's credentials (reconnecting forever once made). */
  connect: () => Promise<NatsConnection>;
  onEvent: (event: SquadEvent) => void;
  /** A finished mission from the mission view: listed, its events read only when opened. */
  onSummary: (summary: MissionSummaryValue) => void;
  onDeadLetter: (record: DlqRecord, subject: string) => void;
  onNats: (state: NatsState) => void;
  onLoad: (load: AgentLoad) => void;
  /** Consumer and DLQ counts are read this often. Default 2000 ms. */
  pollMs?: number;
  /** Finished missions listed from the mission view at (re)start. Default 500. */
  finishedMissions?: number;
  log?: Logger;
}

export interface SwarmFeed {
  /** Replay one stream range of one mission's events into onEvent (a listed mission opened). */
  loadMission(missionId: string, range: { fromSeq: number; toSeq: number }): Promise<void>;
  stop(): Promise<void>;
}

export function startSwarmFeed(opts: SwarmFeedOptions): SwarmFeed {
  const log = opts.log ?? silentLogger;
  const pollMs = opts.pollMs ?? 2000;
  let stopped = false;
  let nc: NatsConnection | null = null;
  let feed: EventFeed | null = null;
  let sub: EventWatch | null = null;
  let poll: NodeJS.Timeout | null = null;

  const connectLoop = async (): Promise<NatsConnection | null> => {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        return await opts.connect();
      } catch (err) {
        opts.onNats({ state: "down", detail: `NATS is not reachable: ${errorMessage(err)}` });
        log.warn({ err: errorMessage(err), attempt }, "NATS not reachable; retrying");
        await sleep(backoffDelay(attempt, 250, 2000));
      }
    }
    return null;
  };

  /** History, then live; retried until the squad streams exist. */
  const attach = async (conn: NatsConnection): Promise<void> => {
    sub = watchEvents(conn, {
      log,
      // Lifecycle events come from the ordered consumer, in order; the rest only live.
      onEvent: (event, subject) => {
        if (subject !== "squad.coordination") opts.onEvent(event);
      },
      onDeadLetter: (record, subject) => opts.onDeadLetter(record, subject),
      onInvalid: (err, subject) =>
        log.warn({ subject, err: err.message }, "invalid message on the bus"),
    });
    await sub.ready;
    for (let attempt = 1; !stopped; attempt++) {
      try {
        const jsm = await openJetStreamManager(conn, { check: false });
        const fromSeq = (await jsm.streams.info(STREAMS.events)).state.last_seq + 1;
        const snap = await readSwarmSnapshot(conn, {
          log,
          missions: { from: "view", finished: opts.finishedMissions ?? 500 },
        });
        for (const e of snap.submissions) opts.onEvent(e);
        // The mission view lists the finished missions; only the unfinished ones' events (and
        // whatever the view has not folded yet) are replayed, however long the history.
        const view = snap.missionView;
        let historyFrom = 1;
        if (view?.state === "ok") {
          for (const s of view.missions) opts.onSummary(s);
          historyFrom = resumeFrom(view.index);
        } else {
          log.warn(
            { view: view?.state, detail: view?.detail },
            "no usable mission view: replaying all of SQUAD_EVENTS",
          );
        }
        for await (const { event } of replayEvents(conn, { log, fromSeq: historyFrom }))
          opts.onEvent(event);
        for (const e of snap.statusEvents) opts.onEvent(e);
        opts.onLoad({ consumers: snap.consumers, deadLetters: snap.deadLetters });
        await readRecentDeadLetters(conn, opts.onDeadLetter);
        feed = await followEvents(conn, { fromSeq, onEvent: (e) => opts.onEvent(e), log });
        return;
      } catch (err) {
        opts.onNats({
          state: "connecting",
          detail: `connected, but the squad streams cannot be read yet: ${errorMessage(err)}`,
        });
        await sleep(backoffDelay(attempt, 500, 3000));
      }
    }
  };

  const pollLoad = (conn: NatsConnection) => {
    let busy = false;
    poll = setInterval(() => {
      if (busy || stopped || conn.isClosed()) return;
      busy = true;
      readLoad(conn)
        .then((load) => opts.onLoad(load))
        .catch(() => undefined) // disconnected: the status loop says so
        .finally(() => (busy = false));
    }, pollMs);
    poll.unref();
  };

  const run = (async () => {
    opts.onNats({ state: "connecting", detail: "connecting to NATS" });
    const conn = await connectLoop();
    if (!conn) return;
    nc = conn;
    void (async () => {
      for await (const s of conn.status()) {
        if (s.type === "disconnect")
          opts.onNats({ state: "down", detail: "NATS disconnected; reconnecting" });
        else if (s.type === "reconnect")
          opts.onNats({ state: "up", detail: `connected to ${conn.getServer()}` });
      }
    })().catch(() => undefined);
    await attach(conn);
    if (stopped) return;
    opts.onNats({ state: "up", detail: `connected to ${conn.getServer()}` });
    pollLoad(conn);
  })().catch((err: unknown) => {
    log.error({ err: errorMessage(err) }, "dashboard feed failed");
    opts.onNats({ state: "down", detail: `dashboard feed failed: ${errorMessage(err)}` });
  });

  return {
    async loadMission(missionId, range) {
      if (!nc) return;
      for await (const { event } of replayEvents(nc, { log, missionId, ...range }))
        opts.onEvent(event);
    },
    async stop() {
      stopped = true;
      if (poll) clearInterval(poll);
      await feed?.stop().catch(() => undefined);
      await sub?.stop().catch(() => undefined);
      await run;
      await nc?.close().catch(() => undefined);
    },
  };
}

async function readLoad(nc: NatsConnection): Promise<AgentLoad> {
  const jsm = await openJetStreamManager(nc, { check: false });
  const [consumers, deadLetters] = await Promise.all([
    readWorkerConsumers(jsm),
    countPerAgent(jsm, STREAMS.dlq, /^squad\.dlq\.([a-z0-9_-]{1,64})$/),
  ]);
  return { consumers, deadLetters };
}

/** The last `max` records of SQUAD_DLQ (the live subscription brings the later ones). */
async function readRecentDeadLetters(
  nc: NatsConnection,
  onRecord: (record: DlqRecord, subject: string) => void,
  max = 50,
): Promise<void> {
  const jsm = await openJetStreamManager(nc, { check: false });
  const state = (await jsm.streams.info(STREAMS.dlq).catch(() => null))?.state;
  if (!state || state.messages === 0) return;
  for (
    let seq = Math.max(state.first_seq, state.last_seq - max + 1);
    seq <= state.last_seq;
    seq++
  ) {
    const m = await jsm.streams.getMessage(STREAMS.dlq, { seq }).catch(() => null);
    if (!m) continue;
    try {
      onRecord(parseWith(DlqRecord, m.json(), "dead-letter record"), m.subject);
    } catch {
      // not a record: `swarm watch` reports those
    }
  }
}
