/**
 * The `squad_bundles` object store: git bundles of every mission, named
 * `<mission>/<commit>` (src/workspace/bundle-store.ts). Made where the
 * streams are made (swarm-provision.ts, the orchestrator), replicated like
 * them, with size and age limits from the environment.
 */
import type { ObjectStore } from "@nats-io/obj";
import { nanos } from "@nats-io/transport-node";
import type { NatsConnection } from "./connect.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";
import { replicasFromEnv } from "./stream-replicas.ts";
import { InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";

export const BUNDLE_BUCKET = "squad_bundles";
/** The JetStream stream under the bucket. */
export const BUNDLE_STREAM = `OBJ_${BUNDLE_BUCKET}`;

export const DEFAULT_BUNDLE_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_BUNDLE_MAX_AGE_S = 7 * 24 * 3600;
export const DEFAULT_BUNDLE_LIMIT_BYTES = 64 * 1024 * 1024;

export interface BundleLimits {
  /** The whole bucket (SWARM_BUNDLE_MAX_BYTES, default 1 GiB). */
  maxBytes: number;
  /** How long a bundle is kept (SWARM_BUNDLE_MAX_AGE_S, default 7 days, like SQUAD_EVENTS). */
  maxAgeS: number;
  /** One bundle (SWARM_BUNDLE_LIMIT_BYTES, default 64 MiB): a bigger one fails the task. */
  bundleLimitBytes: number;
  /** Like the streams (SWARM_STREAM_REPLICAS). */
  replicas: number;
  /**
   * How long one get, put or lookup may take (SWARM_BUNDLE_TIMEOUT_MS,
   * default 10 s): a server that stops answering (a cluster node lost
   * mid-read) fails that call, and the fetch after it starts afresh.
   */
  timeoutMs?: number;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InfrastructureError(
      `${name} must be a positive whole number, got ${JSON.stringify(raw)}`,
      `unset ${name} for its default (${fallback}) or give a number`,
    );
  }
  return n;
}

/** The bucket's limits from SWARM_BUNDLE_MAX_BYTES, SWARM_BUNDLE_MAX_AGE_S, SWARM_BUNDLE_LIMIT_BYTES. */
export function bundleLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): BundleLimits {
  const limits = {
    maxBytes: positiveInt(env, "SWARM_BUNDLE_MAX_BYTES", DEFAULT_BUNDLE_MAX_BYTES),
    maxAgeS: positiveInt(env, "SWARM_BUNDLE_MAX_AGE_S", DEFAULT_BUNDLE_MAX_AGE_S),
    bundleLimitBytes: positiveInt(env, "SWARM_BUNDLE_LIMIT_BYTES", DEFAULT_BUNDLE_LIMIT_BYTES),
    replicas: replicasFromEnv(env) ?? 1,
    timeoutMs: positiveInt(env, "SWARM_BUNDLE_TIMEOUT_MS", 10_000),
  };
  if (limits.bundleLimitBytes > limits.maxBytes) {
    throw new InfrastructureError(
      `SWARM_BUNDLE_LIMIT_BYTES (${limits.bundleLimitBytes}) is larger than the whole bucket, SWARM_BUNDLE_MAX_BYTES (${limits.maxBytes})`,
    );
  }
  return limits;
}

/** "insufficient storage resources available": the server cannot reserve max_bytes. */
const INSUFFICIENT_RESOURCES = 10047;
/** No room for max_bytes: on one server (10047), or on a cluster's peers (10005, "insufficient storage"). */
function noRoom(err: unknown): boolean {
  return (
    hasJsCode(err, INSUFFICIENT_RESOURCES) ||
    (hasJsCode(err, JS_CODES.noSuitablePeers) &&
      /insufficient storage/i.test((err as Error).message))
  );
}

/** The smallest bucket worth making when the server cannot reserve the asked size. */
const MIN_FITTED_BYTES = 16 * 1024 * 1024;

/**
 * Create the bucket, or bring an existing one's max_bytes and max_age to
 * `limits` (replicas are left as they are, like the streams'). Needs the
 * admin's permissions (stream create/update).
 *
 * max_bytes is a reservation: a bucket that took all of a server's
 * max_file_store would leave no room to create any other stream or bucket
 * (or to place a scaled-up stream's replicas). So the size is set only
 * where twice as much could be reserved; otherwise the largest halving of
 * SWARM_BUNDLE_MAX_BYTES that leaves as much again free, with a warning.
 */
export async function provisionBundleBucket(
  nc: NatsConnection,
  limits: BundleLimits,
  log: Logger = silentLogger,
): Promise<ObjectStore> {
  const { Objm, StorageType } = await import("@nats-io/obj");
  const maxAge = nanos(limits.maxAgeS * 1000);
  const jsm = await openJetStreamManager(nc);
  const config = async () => (await jsm.streams.info(BUNDLE_STREAM)).config;
  const setBytes = async (maxBytes: number) => {
    const c = await config();
    // The server refuses a duplicate window longer than max_age.
    const dup = Math.min(c.duplicate_window, maxAge);
    await jsm.streams.update(BUNDLE_STREAM, {
      ...c,
      max_bytes: maxBytes,
      max_age: maxAge,
      duplicate_window: dup,
    });
  };
  let store: ObjectStore | null = null;
  const open = async (maxBytes: number) => {
    store = await new Objm(nc).create(BUNDLE_BUCKET, {
      storage: StorageType.File,
      replicas: limits.replicas,
      max_bytes: maxBytes,
      ttl: maxAge,
      description: "Squad: git bundles of missions, <mission>/<commit>",
    });
  };
  const existing = await config().catch((err: unknown) => {
    if (hasJsCode(err, JS_CODES.streamNotFound)) return null;
    throw err;
  });
  if (existing && existing.max_bytes === limits.maxBytes && existing.max_age === maxAge) {
    await open(limits.maxBytes);
    return store!;
  }
  const have = existing?.max_bytes ?? 0;
  for (let size = limits.maxBytes; ; size = Math.floor(size / 2)) {
    try {
      // Twice the size reserved for a moment (made or grown), then the size itself.
      if (existing && have >= size) await setBytes(size);
      else if (existing) await setBytes(size * 2);
      else await open(size * 2);
      if (!(existing && have >= size)) await setBytes(size);
      if (size !== limits.maxBytes) warnFitted(log, limits.maxBytes, size);
      else if (existing)
        log.info({ bucket: BUNDLE_BUCKET, max_bytes: size }, "bundle bucket limits updated");
      break;
    } catch (err) {
      if (noRoom(err) && size / 2 >= MIN_FITTED_BYTES) continue;
      if (noRoom(err) && existing) {
        // Nothing larger fits: an existing bucket keeps its size, and still gets the new age.
        await setBytes(have);
        warnFitted(log, limits.maxBytes, have);
        break;
      }
      throw new InfrastructureError(
        `could not ${existing ? "update" : "create"} the object store ${BUNDLE_BUCKET}: ${(err as Error).message}`,
        noRoom(err)
          ? "give JetStream more file storage (max_file_store) or lower SWARM_BUNDLE_MAX_BYTES"
          : "check that the NATS server runs with JetStream enabled and has room for the bucket",
        { cause: err },
      );
    }
  }
  if (!store) await open(limits.maxBytes);
  return store!;
}

function warnFitted(log: Logger, asked: number, got: number): void {
  log.warn(
    { bucket: BUNDLE_BUCKET, asked_bytes: asked, max_bytes: got },
    "JetStream cannot reserve SWARM_BUNDLE_MAX_BYTES for the bundle bucket; made it smaller " +
      "(raise max_file_store or lower SWARM_BUNDLE_MAX_BYTES)",
  );
}

/** Open the existing bucket (workers, the CLI: put/get only, no stream create). */
export async function openBundleBucket(nc: NatsConnection): Promise<ObjectStore> {
  try {
    const { Objm } = await import("@nats-io/obj");
    return await new Objm(nc).open(BUNDLE_BUCKET);
  } catch (err) {
    throw new InfrastructureError(
      `the object store ${BUNDLE_BUCKET} is not usable on ${nc.getServer()}: ${(err as Error).message}`,
      "start the orchestrator (or `swarm up`) first: it provisions the bucket with the streams",
      { cause: err },
    );
  }
}
