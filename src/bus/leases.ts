import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { InfrastructureError } from "../errors.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { replicasFromEnv } from "./stream-replicas.ts";
import { parseWith } from "../schema/index.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";

/** Buckets of the design: worker claims (claimKey) and orchestrator missions (`<mission>`). */
export const CLAIMS_BUCKET = "squad_claims";
export const MISSIONS_BUCKET = "squad_missions";

/**
 * The claim key of one attempt: `<agent>.<mission>.<task>.<attempt>`. The
 * agent comes first so that NATS permissions can give a worker
 * `$KV.squad_claims.<agent>.>` only; ids hold no dots.
 */
export function claimKey(
  agent: string,
  missionId: string,
  taskId: string,
  attempt: number,
): string {
  return `${agent}.${missionId}.${taskId}.${attempt}`;
}

/** The JSON value of one lease key. */
export const LeaseValue = z.object({
  owner: z.string().min(1),
  /** Epoch ms (the acquirer's clock). */
  expires_at: z.number(),
  /** The work is finished: nobody may take the key again. */
  done: z.boolean(),
  updated_at: z.iso.datetime({ offset: true }),
});
export type LeaseValue = z.infer<typeof LeaseValue>;

export type AcquireResult =
  { ok: true; revision: number } | { ok: false; holder: string; expiresAt: number; done: boolean };

export interface LeaseStore {
  /**
   * Take the key for `leaseMs`. Exactly one of several concurrent acquirers
   * wins. An expired, unfinished lease is taken over. Not re-entrant: a key
   * its own owner still holds answers ok:false with holder = owner.
   */
  acquire(key: string, owner: string, leaseMs: number): Promise<AcquireResult>;
  /** Extend a lease this owner holds; false if it is lost, done or gone. */
  renew(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /**
   * Mark the work done; later acquires answer ok:false, done:true. Throws LeaseLostError if another owner holds it.
   * `revision`: the key's revision as this owner last wrote it (acquire's answer): tried first as a
   * single compare-and-set, without reading the key; if the key changed since, it is read as usual.
   */
  complete(key: string, owner: string, opts?: { revision?: number }): Promise<void>;
  /** Give the key up (if this owner holds it and it isn't done) so another may acquire it at once. */
  release(key: string, owner: string): Promise<void>;
  /** The current lease, or null. */
  inspect(key: string): Promise<(LeaseValue & { revision: number }) | null>;
}

export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

/** Compare-and-set rounds before giving up under heavy contention (each round means another writer won). */
const MAX_ROUNDS = 20;

function isCasConflict(err: unknown): boolean {
  return hasJsCode(err, JS_CODES.wrongLastSequence);
}

/**
 * Leases on a JetStream KV bucket, for idempotent claims: KV `create` fails
 * when the key exists, and `update` is a compare-and-set on the revision.
 * Works on nats-server 2.9.10.
 */
export async function openLeaseStore(
  nc: NatsConnection,
  bucket: string,
  opts: {
    /**
     * Replicas of the bucket (3 on a 3-node cluster); an existing bucket with
     * other replicas is scaled to it. Omitted: a bucket created now gets
     * SWARM_STREAM_REPLICAS of the process environment (else 1), and an
     * existing one keeps its replicas.
     */
    replicas?: number;
    ttlMs?: number;
  } = {},
): Promise<LeaseStore> {
  let kv: KV;
  const replicas = opts.replicas ?? replicasFromEnv();
  try {
    kv = await new Kvm(nc).create(bucket, {
      history: 1,
      replicas: replicas ?? 1,
      ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}),
    });
    // create() opens an existing bucket as it is: bring its replicas to the setting asked for.
    if (opts.replicas !== undefined) await scaleBucket(nc, bucket, opts.replicas);
  } catch (err) {
    throw new InfrastructureError(
      `could not open the KV bucket ${bucket}: ${(err as Error).message}`,
      "the lease store needs NATS with JetStream (`nats-server -js`)",
      { cause: err },
    );
  }
  const encode = (v: LeaseValue) => JSON.stringify(v);
  const value = (owner: string, leaseMs: number, done = false): LeaseValue => ({
    owner,
    expires_at: Date.now() + leaseMs,
    done,
    updated_at: new Date().toISOString(),
  });

  async function read(key: string): Promise<{ lease: LeaseValue; entry: KvEntry } | null> {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== "PUT") return null;
    const lease = parseWith(LeaseValue, entry.json(), `lease ${bucket}/${key}`);
    return { lease, entry };
  }

  return {
    async acquire(key, owner, leaseMs) {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        try {
          // create() also succeeds over a released (deleted) key, still compare-and-set.
          return { ok: true, revision: await kv.create(key, encode(value(owner, leaseMs))) };
        } catch (err) {
          if (!isCasConflict(err)) throw err;
        }
        const cur = await read(key);
        if (!cur) continue; // released or purged between our create and read
        const { lease, entry } = cur;
        if (lease.done || lease.expires_at > Date.now()) {
          return { ok: false, holder: lease.owner, expiresAt: lease.expires_at, done: lease.done };
        }
        try {
          return {
            ok: true,
            revision: await kv.update(key, encode(value(owner, leaseMs)), entry.revision),
          };
        } catch (err) {
          if (!isCasConflict(err)) throw err;
          // Someone else took the expired lease first; look again.
        }
      }
      throw new Error(
        `lease ${bucket}/${key}: no decision after ${MAX_ROUNDS} compare-and-set rounds`,
      );
    },

    async renew(key, owner, leaseMs) {
      const cur = await read(key);
      if (!cur || cur.lease.owner !== owner || cur.lease.done) return false;
      try {
        await kv.update(key, encode(value(owner, leaseMs)), cur.entry.revision);
        return true;
      } catch (err) {
        if (isCasConflict(err)) return false;
        throw err;
      }
    },

    async complete(key, owner, opts = {}) {
      if (opts.revision !== undefined) {
        // Usually nobody wrote the key since our acquire: one round trip instead of two.
        try {
          await kv.update(key, encode(value(owner, 0, true)), opts.revision);
          return;
        } catch (err) {
          if (!isCasConflict(err)) throw err;
          // Renewed, released or taken over meanwhile: decide from what is there now.
        }
      }
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const cur = await read(key);
        if (cur && cur.lease.owner !== owner) {
          throw new LeaseLostError(
            `lease ${bucket}/${key} is held by ${cur.lease.owner}, not ${owner}`,
          );
        }
        if (cur?.lease.done) return;
        const done = encode({
          ...value(owner, 0, true),
          expires_at: cur?.lease.expires_at ?? Date.now(),
        });
        try {
          if (cur) await kv.update(key, done, cur.entry.revision);
          else await kv.create(key, done);
          return;
        } catch (err) {
          if (!isCasConflict(err)) throw err;
        }
      }
      throw new Error(`lease ${bucket}/${key}: could not mark done after ${MAX_ROUNDS} rounds`);
    },

    async release(key, owner) {
      const cur = await read(key);
      if (!cur || cur.lease.owner !== owner || cur.lease.done) return;
      try {
        await kv.delete(key, { previousSeq: cur.entry.revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err; // changed meanwhile: it isn't ours to release any more
      }
    },

    async inspect(key) {
      const cur = await read(key);
      return cur ? { ...cur.lease, revision: cur.entry.revision } : null;
    },
  };
}

/** Set the replicas of a KV bucket's stream (`KV_<bucket>`) when they differ. */
export async function scaleBucket(
  nc: NatsConnection,
  bucket: string,
  replicas: number,
): Promise<void> {
  const jsm = await openJetStreamManager(nc, { check: false });
  const stream = `KV_${bucket}`;
  const info = await jsm.streams.info(stream);
  if ((info.config.num_replicas ?? 1) === replicas) return;
  await jsm.streams.update(stream, { num_replicas: replicas });
}
