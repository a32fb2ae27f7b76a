/**
 * Read-only queries behind `swarm status`: what the squad streams, the worker
 * consumers and the mission view hold right now, each read bounded by what
 * is current (replicas, queues, unfinished and recent missions), not by how
 * long the swarm has run. Nothing is created or changed; a stream that does
 * not exist yet (a server nobody provisioned) reads as empty.
 */
import { JetStreamApiError, jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { STREAMS, decodeEvent, subjects, type EventOf, type SquadEvent } from "../schema/index.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { readMissionView, type MissionViewReading } from "./mission-view-store.ts";
import { replayEvents } from "./watcher.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";

/** Load of one `worker-<agent>` durable on SQUAD_TASKS. */
export interface WorkerConsumerStats {
  agent: string;
  /** Durable name, `worker-<agent>`. */
  name: string;
  /** Tasks waiting for a replica (backlog). */
  pending: number;
  /** Tasks delivered and not yet acked (in flight). */
  ackPending: number;
  /** Pull requests waiting: idle replica slots. */
  waiting: number;
  /** Messages delivered more than once. */
  redelivered: number;
}

export interface SwarmSnapshot {
  /** When the reading started (ISO 8601). */
  takenAt: string;
  /** The last message of every `squad.status.<agent>.<instance>` subject. */
  statusEvents: SquadEvent[];
  consumers: WorkerConsumerStats[];
  /** Messages in SQUAD_TASKS per agent (queued or in flight; acked ones are gone). */
  queuedTasks: Record<string, number>;
  /** Records in SQUAD_DLQ per agent. */
  deadLetters: Record<string, number>;
  /** The mission view (KV squad_mission_view); null when the events were read instead. */
  missionView: MissionViewReading | null;
  /** Every event in SQUAD_EVENTS, in stream order: only with `missions: { from: "events" }`. */
  missionEvents: SquadEvent[];
  /** `mission_submitted` events still in SQUAD_MISSIONS: not yet taken by an orchestrator. */
  submissions: EventOf<"mission_submitted">[];
  /** Messages that were not valid events (skipped). */
  invalidMessages: number;
}

export interface SnapshotOptions {
  log?: Logger;
  /** Most submissions read from SQUAD_MISSIONS (newest kept). Default 500. */
  maxSubmissions?: number;
  /**
   * Where the missions come from. Default: the mission view, its active
   * missions and the last 20 finished ones (a bounded read however long the
   * history). `events`: every event of SQUAD_EVENTS (as slow as the history is long).
   */
  missions?: { from: "view"; finished: number } | { from: "events" };
  now?: () => Date;
}

/** Everything `swarm status` shows, read in parallel. Throws InfrastructureError without JetStream. */
export async function readSwarmSnapshot(
  nc: NatsConnection,
  opts: SnapshotOptions = {},
): Promise<SwarmSnapshot> {
  const log = opts.log ?? silentLogger;
  const takenAt = (opts.now?.() ?? new Date()).toISOString();
  const jsm = await openJetStreamManager(nc);
  let invalid = 0;
  const countInvalid = () => invalid++;
  const missions = opts.missions ?? { from: "view", finished: 20 };
  const [
    statusEvents,
    consumers,
    queuedTasks,
    deadLetters,
    missionEvents,
    missionView,
    submissions,
  ] = await Promise.all([
    readStatusEvents(nc, jsm, countInvalid),
    readWorkerConsumers(jsm),
    countPerAgent(jsm, STREAMS.tasks, /^squad\.tasks\.([a-z0-9_-]{1,64})$/),
    countPerAgent(jsm, STREAMS.dlq, /^squad\.dlq\.([a-z0-9_-]{1,64})$/),
    missions.from === "events" ? readMissionEvents(nc, jsm, log) : [],
    missions.from === "view" ? readMissionView(nc, { finished: missions.finished }) : null,
    readPendingSubmissions(jsm, opts.maxSubmissions ?? 500, countInvalid),
  ]);
  return {
    takenAt,
    statusEvents,
    consumers,
    queuedTasks,
    deadLetters,
    missionEvents,
    missionView,
    submissions,
    invalidMessages: invalid,
  };
}

/** State of a stream, or null when it does not exist. */
async function streamState(
  jsm: JetStreamManager,
  stream: string,
  subjectsFilter?: string,
): Promise<{
  messages: number;
  first_seq: number;
  last_seq: number;
  subjects?: Record<string, number>;
} | null> {
  try {
    const info = await jsm.streams.info(
      stream,
      subjectsFilter ? { subjects_filter: subjectsFilter } : undefined,
    );
    return info.state;
  } catch (err) {
    if (hasJsCode(err, JS_CODES.streamNotFound)) return null;
    throw err;
  }
}

/**
 * SQUAD_STATUS keeps one message per subject, so reading the whole stream in
 * order gives the last status of every instance.
 */
async function readStatusEvents(
  nc: NatsConnection,
  jsm: JetStreamManager,
  onInvalid: () => void,
): Promise<SquadEvent[]> {
  const state = await streamState(jsm, STREAMS.status);
  if (!state || state.messages === 0) return [];
  const consumer = await jetstream(nc).consumers.get(STREAMS.status, {
    opt_start_seq: Math.max(1, state.first_seq),
    filter_subjects: subjects.allStatus,
  });
  const out: SquadEvent[] = [];
  try {
    let seen = state.first_seq - 1;
    while (seen < state.last_seq) {
      const msgs = await consumer.fetch({ max_messages: 256, expires: 2000 });
      let got = 0;
      for await (const m of msgs) {
        got++;
        seen = m.seq;
        try {
          out.push(decodeEvent(m.data));
        } catch {
          onInvalid();
        }
        if (seen >= state.last_seq) break;
      }
      // Nothing more within the pull's lifetime: the rest was replaced meanwhile.
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return out;
}

/** The `worker-<agent>` consumers of SQUAD_TASKS and their counts, by agent. */
export async function readWorkerConsumers(jsm: JetStreamManager): Promise<WorkerConsumerStats[]> {
  if (!(await streamState(jsm, STREAMS.tasks))) return [];
  const infos = await jsm.consumers.list(STREAMS.tasks).next();
  return infos
    .filter((c) => c.name.startsWith("worker-"))
    .map((c) => ({
      agent: c.name.slice("worker-".length),
      name: c.name,
      pending: c.num_pending,
      ackPending: c.num_ack_pending,
      waiting: c.num_waiting,
      redelivered: c.num_redelivered,
    }))
    .sort((a, b) => a.agent.localeCompare(b.agent));
}

/** Messages per `<prefix>.<agent>` subject of a stream, by agent. */
export async function countPerAgent(
  jsm: JetStreamManager,
  stream: string,
  pattern: RegExp,
): Promise<Record<string, number>> {
  const state = await streamState(jsm, stream, ">");
  const out: Record<string, number> = {};
  for (const [subject, n] of Object.entries(state?.subjects ?? {})) {
    const agent = pattern.exec(subject)?.[1];
    if (agent) out[agent] = (out[agent] ?? 0) + n;
  }
  return out;
}

async function readMissionEvents(
  nc: NatsConnection,
  jsm: JetStreamManager,
  log: Logger,
): Promise<SquadEvent[]> {
  if (!(await streamState(jsm, STREAMS.events))) return [];
  const out: SquadEvent[] = [];
  for await (const { event } of replayEvents(nc, { log })) out.push(event);
  return out;
}

/**
 * SQUAD_MISSIONS is a work queue with the orchestrators' durable on it, so a
 * second consumer is refused; its few unacked messages are read one by one.
 */
async function readPendingSubmissions(
  jsm: JetStreamManager,
  max: number,
  onInvalid: () => void,
): Promise<EventOf<"mission_submitted">[]> {
  const state = await streamState(jsm, STREAMS.missions);
  if (!state || state.messages === 0) return [];
  const first = Math.max(state.first_seq, state.last_seq - max + 1, 1);
  const out: EventOf<"mission_submitted">[] = [];
  for (let seq = first; seq <= state.last_seq; seq++) {
    let data: Uint8Array;
    try {
      const m = await jsm.streams.getMessage(STREAMS.missions, { seq });
      if (!m) continue; // acked (deleted) meanwhile
      data = m.data;
    } catch (err) {
      if (err instanceof JetStreamApiError) continue;
      throw new Error(`could not read SQUAD_MISSIONS seq ${seq}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    try {
      const e = decodeEvent(data);
      if (e.type === "mission_submitted") out.push(e);
      else onInvalid();
    } catch {
      onInvalid();
    }
  }
  return out;
}
