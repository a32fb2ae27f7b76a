/**
 * Git bundles of a mission in the `squad_bundles` object store, one object
 * per commit, named `<mission>/<commit>`. A put is chunked by the client and
 * its metadata written last, so a put cut short is never visible as an object.
 * Reads go through src/bus/object-read.ts, not the client's get() and list():
 * those create consumers, which a cluster that lost a node may place on the
 * dead node (the request then times out).
 */
import { bytesText } from "../text.ts";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import {
  BUNDLE_BUCKET,
  openBundleBucket,
  provisionBundleBucket,
  type BundleLimits,
} from "../bus/bundle-bucket.ts";
import type { NatsConnection } from "../bus/connect.ts";
import { openJetStreamManager } from "../bus/jetstream-manager.ts";
import { listObjects, readObject } from "../bus/object-read.ts";
import { BadInputError, InfrastructureError } from "../errors.ts";
import type { CommitId } from "../schema/identifiers.ts";

export { BUNDLE_BUCKET, bundleLimitsFromEnv, type BundleLimits } from "../bus/bundle-bucket.ts";

export function bundleObjectName(mission: string, commit: CommitId): string {
  return `${mission}/${commit}`;
}

export interface BundleStore {
  /** Store the bundle of `commit`; BundleTooLargeError over the per-bundle limit. */
  put(mission: string, commit: CommitId, bytes: Uint8Array): Promise<void>;
  /** The bundle, or null when the store has none for this commit. */
  get(mission: string, commit: CommitId): Promise<Uint8Array | null>;
  has(mission: string, commit: CommitId): Promise<boolean>;
  /** Delete every bundle of the mission; how many were deleted. */
  removeMission(mission: string): Promise<number>;
  /** The per-bundle limit in bytes (SWARM_BUNDLE_LIMIT_BYTES). */
  readonly bundleLimitBytes: number;
}

/** A bundle over SWARM_BUNDLE_LIMIT_BYTES: the work is too big to ship, say how to allow it. */
export class BundleTooLargeError extends BadInputError {
  override readonly name: string = "BundleTooLargeError";
  readonly bytes: number;
  readonly limitBytes: number;
  constructor(what: string, bytes: number, limitBytes: number) {
    super(
      `${what} is a git bundle of ${formatBytes(bytes)}, over the limit of ${formatBytes(limitBytes)} ` +
        `(raise SWARM_BUNDLE_LIMIT_BYTES, and SWARM_BUNDLE_MAX_BYTES for the whole bucket, to allow it)`,
    );
    this.bytes = bytes;
    this.limitBytes = limitBytes;
  }
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} bytes` : `${bytesText(n)} (${n} bytes)`;
}

/** `op`, or an InfrastructureError once `ms` have passed without an answer. */
async function within<T>(op: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new InfrastructureError(
            `the object store ${BUNDLE_BUCKET} did not answer within ${ms} ms (${what}); ` +
              "raise SWARM_BUNDLE_TIMEOUT_MS for very large bundles on a slow link",
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([op, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function bundleStoreOf(
  obj: ObjectStore,
  jsm: JetStreamManager,
  bundleLimitBytes: number,
  timeoutMs = 10_000,
): BundleStore {
  return {
    bundleLimitBytes,
    async put(mission, commit, bytes) {
      const name = bundleObjectName(mission, commit);
      if (bytes.byteLength > bundleLimitBytes) {
        throw new BundleTooLargeError(
          `commit ${commit} of mission ${mission}`,
          bytes.byteLength,
          bundleLimitBytes,
        );
      }
      await within(
        obj.putBlob({ name, description: `git bundle of ${commit}` }, bytes),
        timeoutMs,
        `put ${name}`,
      );
    },
    async get(mission, commit) {
      const name = bundleObjectName(mission, commit);
      const read = async () => {
        const info = await obj.info(name);
        return info === null || info.deleted ? null : readObject(jsm, BUNDLE_BUCKET, info);
      };
      return within(read(), timeoutMs, `get ${name}`);
    },
    async has(mission, commit) {
      const name = bundleObjectName(mission, commit);
      const info = await within(obj.info(name), timeoutMs, `info ${name}`);
      return info !== null && !info.deleted;
    },
    async removeMission(mission) {
      const prefix = `${mission}/`;
      let n = 0;
      const all = await within(listObjects(jsm, BUNDLE_BUCKET), timeoutMs, "list");
      for (const info of all) {
        if (!info.name.startsWith(prefix)) continue;
        await obj.delete(info.name);
        n++;
      }
      return n;
    },
  };
}

/**
 * The mission bundle store. `provision` (default true: the orchestrator)
 * creates the bucket or updates its limits; false (workers, the CLI) opens
 * the existing bucket with put/get permissions only.
 */
export async function openBundleStore(
  nc: NatsConnection,
  limits: BundleLimits,
  opts: { provision?: boolean } = {},
): Promise<BundleStore> {
  const obj =
    opts.provision === false ? await openBundleBucket(nc) : await provisionBundleBucket(nc, limits);
  // No API check: a worker may not call $JS.API.INFO, and the bucket's open just answered.
  const jsm = await openJetStreamManager(nc, { check: false });
  return bundleStoreOf(obj, jsm, limits.bundleLimitBytes, limits.timeoutMs ?? 10_000);
}
