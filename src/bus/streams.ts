import { setTimeout as sleep } from "node:timers/promises";
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { errors, nanos, type NatsConnection } from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { hasJsCode, jsApiCode, JS_CODES } from "./jetstream-codes.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { bundleLimitsFromEnv, provisionBundleBucket } from "./bundle-bucket.ts";
import { replicasFromEnv } from "./stream-replicas.ts";
import { backoffDelay } from "../backoff.ts";
import { silentLogger, type Logger } from "../log.ts";
import { STREAMS, subjects } from "../schema/index.ts";

export { replicasFromEnv };

export interface StreamOptions {
  /** Age after which SQUAD_EVENTS drops events. Default 7 days; 0 keeps them forever. */
  eventsMaxAgeS?: number;
  /**
   * Replicas of every stream (3 on a 3-node cluster); existing streams are
   * scaled to it. Omitted: a stream created now gets SWARM_STREAM_REPLICAS of
   * the process environment (else 1), and an existing stream keeps its
   * replicas (only a process asked to, the orchestrator, changes them; one
   * that was not told the setting must not scale R3 streams down).
   */
  replicas?: number;
  /** Window in which a repeated Nats-Msg-Id is dropped as a duplicate. Default 120 s. */
  duplicateWindowS?: number;
}

/** The part of a stream's config the contract fixes; everything else is server default. */
export interface SquadStreamSpec {
  name: string;
  subjects: string[];
  retention: RetentionPolicy;
  storage: StorageType;
  discard: DiscardPolicy;
  num_replicas: number;
  /** Nanoseconds; 0 = unlimited. */
  max_age: number;
  /** Nanoseconds. */
  duplicate_window: number;
  max_msgs_per_subject?: number;
}

export const DEFAULT_EVENTS_MAX_AGE_S = 7 * 24 * 3600;
export const DEFAULT_DUPLICATE_WINDOW_S = 120;

interface Resolved {
  eventsMaxAge: number;
  replicas: number;
  dupWindow: number;
}

function resolve(opts: StreamOptions): Resolved {
  const replicas = opts.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new InfrastructureError(`stream replicas must be 1-5, got ${replicas}`);
  }
  return {
    eventsMaxAge: nanos((opts.eventsMaxAgeS ?? DEFAULT_EVENTS_MAX_AGE_S) * 1000),
    replicas,
    dupWindow: nanos((opts.duplicateWindowS ?? DEFAULT_DUPLICATE_WINDOW_S) * 1000),
  };
}

/** The server refuses a duplicate window longer than max_age. */
function dupWindowFor(maxAge: number, dupWindow: number): number {
  return maxAge > 0 ? Math.min(maxAge, dupWindow) : dupWindow;
}

function base(name: string, subjectList: string[], r: Resolved): SquadStreamSpec {
  return {
    name,
    subjects: subjectList,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: r.replicas,
    max_age: 0,
    duplicate_window: r.dupWindow,
  };
}

/** SQUAD_TASKS: one `task_assigned` per attempt; deleted once a worker acks it. */
export function tasksStreamConfig(opts: StreamOptions = {}): SquadStreamSpec {
  const r = resolve(opts);
  return { ...base(STREAMS.tasks, [subjects.allTasks], r), retention: RetentionPolicy.Workqueue };
}

/** SQUAD_EVENTS: the audit trail every mission is replayed from. */
export function eventsStreamConfig(opts: StreamOptions = {}): SquadStreamSpec {
  const r = resolve(opts);
  return {
    ...base(STREAMS.events, [subjects.coordination], r),
    max_age: r.eventsMaxAge,
    duplicate_window: dupWindowFor(r.eventsMaxAge, r.dupWindow),
  };
}

/** SQUAD_STATUS: the last online/heartbeat/offline per `<agent>.<instance>`. */
export function statusStreamConfig(opts: StreamOptions = {}): SquadStreamSpec {
  const r = resolve(opts);
  return { ...base(STREAMS.status, [subjects.allStatus], r), max_msgs_per_subject: 1 };
}

/** SQUAD_MISSIONS: submitted briefs, taken by one orchestrator each. */
export function missionsStreamConfig(opts: StreamOptions = {}): SquadStreamSpec {
  const r = resolve(opts);
  return {
    ...base(STREAMS.missions, [subjects.missionsSubmit], r),
    retention: RetentionPolicy.Workqueue,
  };
}

/** SQUAD_DLQ: messages a worker could not use, kept for a person. */
export function dlqStreamConfig(opts: StreamOptions = {}): SquadStreamSpec {
  const r = resolve(opts);
  return base(STREAMS.dlq, [subjects.allDlq], r);
}

export function squadStreamConfigs(opts: StreamOptions = {}): SquadStreamSpec[] {
  return [
    tasksStreamConfig(opts),
    eventsStreamConfig(opts),
    statusStreamConfig(opts),
    missionsStreamConfig(opts),
    dlqStreamConfig(opts),
  ];
}

export interface FieldChange {
  field: keyof SquadStreamSpec;
  have: unknown;
  want: unknown;
}

/** Fields the server cannot change on an existing stream. */
const IMMUTABLE: ReadonlySet<keyof SquadStreamSpec> = new Set(["retention", "storage"]);

/** What differs between an existing stream's config and the spec (pure). */
export function diffStreamConfig(
  have: Partial<StreamConfig>,
  want: SquadStreamSpec,
): { safe: FieldChange[]; unsafe: FieldChange[] } {
  const safe: FieldChange[] = [];
  const unsafe: FieldChange[] = [];
  for (const field of Object.keys(want) as (keyof SquadStreamSpec)[]) {
    if (field === "name") continue;
    const w = want[field];
    const h = (have as Record<string, unknown>)[field];
    const same =
      field === "subjects"
        ? sameSet((h as string[] | undefined) ?? [], w as string[])
        : h === w || (field === "num_replicas" && (h ?? 1) === w);
    if (same) continue;
    (IMMUTABLE.has(field) ? unsafe : safe).push({ field, have: h, want: w });
  }
  return { safe, unsafe };
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * An existing stream's config contradicts the contract in a way the server
 * can't change in place. The message names the stream, the field and the way out.
 */
export class StreamConfigConflictError extends InfrastructureError {
  readonly stream: string;
  readonly conflicts: FieldChange[];
  constructor(stream: string, conflicts: FieldChange[]) {
    const what = conflicts.map(
      (c) => `${c.field} is ${String(c.have)}, the contract needs ${String(c.want)}`,
    );
    super(
      `stream ${stream} exists with a conflicting config: ${what.join("; ")}`,
      `${conflicts.map((c) => c.field).join(" and ")} can't be changed in place: ` +
        `back up what you need, delete the stream (\`nats stream rm ${stream}\`) and provision again, ` +
        `or point NATS_URL at a fresh server`,
    );
    this.stream = stream;
    this.conflicts = conflicts;
  }
}

export interface ProvisionResult {
  stream: string;
  action: "created" | "updated" | "unchanged";
  /** Fields changed by an update. */
  changed: string[];
}

/** How long a cluster that is still forming gets to offer enough peers. */
const PLACEMENT_PATIENCE_MS = 20_000;

/**
 * Create the five streams of the contract, or check the ones that exist,
 * and the `squad_bundles` object store (bundle-bucket.ts).
 * Idempotent: a second run changes nothing. Safe differences (max_age,
 * duplicate window, subjects, replicas when given...) are updated in place;
 * retention or storage differences raise StreamConfigConflictError.
 */
export async function provisionStreams(
  nc: NatsConnection,
  opts: StreamOptions & {
    log?: Logger;
    /** How long a forming cluster may refuse to place replicas (default 20 s). */
    placementPatienceMs?: number;
  } = {},
): Promise<ProvisionResult[]> {
  const log = opts.log ?? silentLogger;
  const jsm = await openJetStreamManager(nc);
  // In parallel: on a cluster each R3 stream is a raft group that takes a moment to form.
  const replicas = opts.replicas ?? replicasFromEnv();
  const keepReplicas = opts.replicas === undefined;
  // allSettled, not all: when one stream fails, the others' requests must not
  // still be in flight after we return (a caller may delete or retry at once).
  const settled = await Promise.allSettled(
    squadStreamConfigs({ ...opts, replicas }).map((spec) =>
      ensureStream(jsm, spec, keepReplicas, opts.placementPatienceMs ?? PLACEMENT_PATIENCE_MS),
    ),
  );
  const failure = settled.find((r) => r.status === "rejected");
  if (failure) throw failure.reason;
  const results = settled.map((r) => (r as PromiseFulfilledResult<ProvisionResult>).value);
  for (const r of results) if (r.action !== "unchanged") log.info(r, `stream ${r.action}`);
  // The git bundles of the missions' workspaces, beside the streams and replicated like them.
  const limits = bundleLimitsFromEnv();
  await provisionBundleBucket(nc, { ...limits, replicas: replicas ?? limits.replicas }, log);
  return results;
}

async function ensureStream(
  jsm: JetStreamManager,
  spec: SquadStreamSpec,
  keepReplicas: boolean,
  patienceMs: number,
): Promise<ProvisionResult> {
  // Two launchers may provision at once: a lost create race is re-checked once.
  for (let round = 0; ; round++) {
    const have = await streamConfig(jsm, spec.name);
    if (!have) {
      try {
        await whilePlacementPending(patienceMs, () => jsm.streams.add({ ...spec }));
        return { stream: spec.name, action: "created", changed: [] };
      } catch (err) {
        if (round === 0 && jsApiCode(err) === JS_CODES.streamNameInUse) continue;
        throw wrapStreamError(spec, "create", err);
      }
    }
    const diff = diffStreamConfig(have, spec);
    const unsafe = diff.unsafe;
    const safe = keepReplicas ? diff.safe.filter((c) => c.field !== "num_replicas") : diff.safe;
    if (unsafe.length) throw new StreamConfigConflictError(spec.name, unsafe);
    if (!safe.length) return { stream: spec.name, action: "unchanged", changed: [] };
    const patch: Record<string, unknown> = {};
    for (const c of safe) patch[c.field] = c.want;
    try {
      await whilePlacementPending(patienceMs, () => jsm.streams.update(spec.name, patch));
    } catch (err) {
      throw wrapStreamError(spec, `update ${safe.map((c) => c.field).join(", ")} of`, err);
    }
    return { stream: spec.name, action: "updated", changed: safe.map((c) => c.field) };
  }
}

/**
 * A cluster that has just started answers JetStream requests before every
 * server has joined its meta group, and refuses to place a replicated stream
 * until then; a busy one may not answer a create within the request timeout
 * (the raft group forms meanwhile). Both are retried for a while. Past that,
 * the cluster really is too small (wrapStreamError says so) or not answering.
 * A create that did land before its timeout answers "name in use" when
 * retried, which the caller re-checks.
 */
async function whilePlacementPending<T>(patienceMs: number, call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const pending =
        jsApiCode(err) === JS_CODES.noSuitablePeers || err instanceof errors.TimeoutError;
      if (!pending || Date.now() >= deadline) throw err;
      await sleep(backoffDelay(attempt + 1, 100, 2000));
    }
  }
}

async function streamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | null> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (err) {
    if (jsApiCode(err) === JS_CODES.streamNotFound) return null;
    throw wrapStreamError({ name } as SquadStreamSpec, "read", err);
  }
}

function wrapStreamError(spec: SquadStreamSpec, what: string, err: unknown): InfrastructureError {
  const msg = (err as Error).message;
  if (jsApiCode(err) === JS_CODES.subjectsOverlap) {
    return new InfrastructureError(
      `could not create stream ${spec.name}: its subjects ${spec.subjects.join(", ")} overlap with another stream`,
      "two streams may not share subjects: find the other stream (`nats stream ls`) and remove it or change its subjects",
      { cause: err },
    );
  }
  if (hasJsCode(err, JS_CODES.noSuitablePeers, JS_CODES.replicasWithoutCluster)) {
    return new InfrastructureError(
      `could not ${what} stream ${spec.name}: ${msg} (it asks for ${spec.num_replicas} replicas)`,
      `a stream with ${spec.num_replicas} replicas needs at least ${spec.num_replicas} JetStream servers in the cluster: ` +
        "start them, or set SWARM_STREAM_REPLICAS to the number there are (1 on a single server)",
      { cause: err },
    );
  }
  return new InfrastructureError(
    `could not ${what} stream ${spec.name}: ${msg}`,
    "check that the NATS server runs with JetStream enabled (`nats-server -js`) and has room for the stream",
    { cause: err },
  );
}
