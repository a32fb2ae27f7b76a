/**
 * The mission view's bucket on NATS (values: src/schema/mission-view.ts).
 * The orchestrator creates it and writes it with compare-and-set on the
 * key's revision (several orchestrators fold the same events); readers (the
 * watcher and operator roles) read the index and a bounded number of
 * missions by direct get, never the whole bucket or the event stream.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { z } from "zod";
import { errorMessage, InfrastructureError } from "../errors.ts";
import {
  MISSION_VIEW_BUCKET,
  MISSION_VIEW_INDEX_KEY,
  MISSION_VIEW_SCHEMA,
  MissionSummaryValue,
  MissionViewIndex,
  MissionViewVersion,
  missionViewKey,
  parseWith,
} from "../schema/index.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";
import { scaleBucket } from "./leases.ts";

/** A value with the key's revision, for the next compare-and-set. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/** A value of another schema version than this program reads. */
export class MissionViewVersionError extends Error {
  override readonly name = "MissionViewVersionError";
}

export interface MissionViewStore {
  mission(missionId: string): Promise<Versioned<MissionSummaryValue> | null>;
  index(): Promise<Versioned<MissionViewIndex> | null>;
  /** Compare-and-set (`revision` 0: the key must not exist): the new revision, or null when another writer was first. */
  putMission(value: MissionSummaryValue, revision: number): Promise<number | null>;
  putIndex(value: MissionViewIndex, revision: number): Promise<number | null>;
}

/** The orchestrator's side: the bucket created if missing (history 1: only current state). */
export async function openMissionViewStore(
  nc: NatsConnection,
  opts: { replicas?: number | undefined } = {},
): Promise<MissionViewStore> {
  let kv: KV;
  try {
    kv = await new Kvm(nc).create(MISSION_VIEW_BUCKET, {
      history: 1,
      replicas: opts.replicas ?? 1,
    });
    if (opts.replicas !== undefined) await scaleBucket(nc, MISSION_VIEW_BUCKET, opts.replicas);
  } catch (err) {
    throw new InfrastructureError(
      `could not open the KV bucket ${MISSION_VIEW_BUCKET}: ${errorMessage(err)}`,
      "the orchestrator's NATS user must be allowed to create it",
      { cause: err },
    );
  }
  return storeOn(kv);
}

function storeOn(kv: KV): MissionViewStore {
  async function read<S extends z.ZodType>(key: string, schema: S) {
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") return null;
    return { value: parseVersioned(schema, e.json(), key), revision: e.revision };
  }
  async function cas(key: string, value: unknown, revision: number): Promise<number | null> {
    try {
      return revision === 0
        ? await kv.create(key, JSON.stringify(value))
        : await kv.update(key, JSON.stringify(value), revision);
    } catch (err) {
      if (hasJsCode(err, JS_CODES.wrongLastSequence)) return null;
      throw err;
    }
  }
  return {
    mission: (id) => read(missionViewKey(id), MissionSummaryValue),
    index: () => read(MISSION_VIEW_INDEX_KEY, MissionViewIndex),
    putMission: (v, rev) => cas(missionViewKey(v.mission_id), v, rev),
    putIndex: (v, rev) => cas(MISSION_VIEW_INDEX_KEY, v, rev),
  };
}

function parseVersioned<S extends z.ZodType>(schema: S, raw: unknown, key: string): z.output<S> {
  const v = MissionViewVersion.safeParse(raw);
  if (v.success && v.data.schema !== MISSION_VIEW_SCHEMA) {
    throw new MissionViewVersionError(
      `${MISSION_VIEW_BUCKET}/${key} has schema ${v.data.schema}; this swarm reads ${MISSION_VIEW_SCHEMA}`,
    );
  }
  return parseWith(schema, raw, `${MISSION_VIEW_BUCKET}/${key}`);
}

export type MissionViewReading =
  | {
      state: "ok";
      index: MissionViewIndex;
      /** The active missions, then the last `finished` finished ones (newest first). */
      missions: MissionSummaryValue[];
      /** Finished missions the index names beyond those read. */
      finishedNotRead: number;
    }
  /** No orchestrator of this version has run on this server yet. */
  | { state: "missing"; detail: string }
  /** Written by another version, or unreadable. */
  | { state: "unusable"; detail: string };

/**
 * The reader's side (watcher's permissions): the index, then every active
 * mission and the `finished` most recently finished ones, in parallel.
 * Never creates anything. A mission key the index names but which is gone
 * (deleted by hand) is skipped.
 */
export async function readMissionView(
  nc: NatsConnection,
  opts: { finished: number },
): Promise<MissionViewReading> {
  const jsm = await openJetStreamManager(nc, { check: false });
  try {
    await jsm.streams.info(`KV_${MISSION_VIEW_BUCKET}`);
  } catch (err) {
    if (hasJsCode(err, JS_CODES.streamNotFound))
      return {
        state: "missing",
        detail: `the KV bucket ${MISSION_VIEW_BUCKET} does not exist: no orchestrator of this version has run on this server`,
      };
    throw err;
  }
  const store = storeOn(await new Kvm(nc).open(MISSION_VIEW_BUCKET));
  try {
    const index = await store.index();
    if (!index)
      return {
        state: "missing",
        detail: `${MISSION_VIEW_BUCKET} has no index yet: the orchestrator has not written it`,
      };
    const finished = index.value.finished;
    const wanted = Math.min(Math.max(0, opts.finished), finished.length);
    const ids = [
      ...index.value.active.map((a) => a.mission_id),
      ...finished.slice(finished.length - wanted).reverse(),
    ];
    const got = await Promise.all(ids.map((id) => store.mission(id)));
    return {
      state: "ok",
      index: index.value,
      missions: got.flatMap((g) => (g ? [g.value] : [])),
      finishedNotRead: finished.length - wanted,
    };
  } catch (err) {
    return { state: "unusable", detail: errorMessage(err) };
  }
}

/** One mission's summary (`swarm cancel`'s check), or null; throws when there is no usable view. */
export async function readMissionSummary(
  nc: NatsConnection,
  missionId: string,
): Promise<MissionSummaryValue | null> {
  const store = storeOn(await new Kvm(nc).open(MISSION_VIEW_BUCKET));
  return (await store.mission(missionId))?.value ?? null;
}
