/**
 * The identity registry: which public key is which role (src/bus/identity.ts).
 *
 * Two sources:
 * - the file `SWARM_IDENTITIES` names (an IdentityRegistryFile, written when
 *   the swarm's credentials are generated): when a process has it, it is the
 *   trust anchor;
 * - the KV bucket `squad_identities` (key = public key), which the
 *   orchestrator fills from its file when it provisions the bus, so that a
 *   process given only its seed learns the others. Every entry is signed by
 *   an orchestrator identity; a process that has the file accepts only
 *   entries signed by an orchestrator in it, one without the file accepts
 *   entries signed by an orchestrator entry of the bucket itself (its trust
 *   then rests on the server's permissions: only the orchestrator may write
 *   the bucket). Entries are watched: an identity added later is known at
 *   once, a deleted one is forgotten (file entries stay).
 *
 * No registry at all (no file, no or an empty bucket) is open mode: nothing
 * is signed or checked (see event-guard.ts).
 */
import { readFile } from "node:fs/promises";
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { BadInputError, InfrastructureError, errorMessage } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { parseWith } from "../schema/index.ts";
import { publicKeyOfSeed, verifyBytes, type EventSigner } from "./event-signing.ts";
import { IdentityRecord, IdentityRegistryFile, type SigningIdentity } from "./identity.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";

export const IDENTITIES_BUCKET = "squad_identities";

/** The known identities, by public key. */
export class IdentityRegistry {
  private readonly fromFile = new Map<string, IdentityRecord>();
  private readonly fromBucket = new Map<string, IdentityRecord>();

  constructor(file?: IdentityRegistryFile) {
    for (const r of file?.identities ?? []) this.fromFile.set(r.public_key, r);
  }

  /** A file was given: it is the trust anchor. */
  get anchored(): boolean {
    return this.fromFile.size > 0;
  }

  get size(): number {
    return new Set([...this.fromFile.keys(), ...this.fromBucket.keys()]).size;
  }

  get(publicKey: string): IdentityRecord | undefined {
    return this.fromFile.get(publicKey) ?? this.fromBucket.get(publicKey);
  }

  records(): IdentityRecord[] {
    const all = new Map(this.fromBucket);
    for (const [k, r] of this.fromFile) all.set(k, r);
    return [...all.values()];
  }

  /** Orchestrator keys whose signature makes a bucket entry trusted. */
  anchorsForBucket(candidates: readonly IdentityRecord[]): Set<string> {
    const source = this.anchored ? [...this.fromFile.values()] : candidates;
    return new Set(source.filter((r) => r.role === "orchestrator").map((r) => r.public_key));
  }

  setBucketEntries(records: readonly IdentityRecord[]): void {
    this.fromBucket.clear();
    for (const r of records) this.fromBucket.set(r.public_key, r);
  }
}

/** One entry of the bucket: a record and the orchestrator's signature of it. */
const BucketEntry = z.object({
  record: IdentityRecord,
  /** Public key of the orchestrator identity that wrote it. */
  signed_by: z.string(),
  /** base64url Ed25519 over identityBytes(record). */
  signature: z.string(),
});
type BucketEntry = z.infer<typeof BucketEntry>;

/** What a bucket entry's signature covers: every field, in a fixed order (pure). */
export function identityBytes(r: IdentityRecord): Uint8Array {
  return new TextEncoder().encode(
    `squad-identity-v1\n${r.name}\n${r.role}\n${r.agent ?? ""}\n${r.public_key}`,
  );
}

/** Reads and checks a registry file (BadInputError naming the problem). */
export async function readIdentityRegistryFile(path: string): Promise<IdentityRegistryFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new BadInputError(
      `can't read the identity registry ${path} (SWARM_IDENTITIES): ${errorMessage(err)}`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`the identity registry ${path} is not JSON: ${errorMessage(err)}`);
  }
  try {
    return parseWith(IdentityRegistryFile, json, `identity registry ${path}`);
  } catch (err) {
    throw new BadInputError(errorMessage(err), { cause: err });
  }
}

/** Reads an nkey seed file (NATS_NKEY): the one "SU..." seed in it. */
export async function readSeedFile(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new BadInputError(`can't read the nkey seed ${path} (NATS_NKEY): ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const seed = /\bSU[A-Z2-7]{56}\b/.exec(text)?.[0];
  if (!seed) {
    throw new BadInputError(
      `${path} (NATS_NKEY) holds no nkey user seed (SU...)` +
        "; " +
        "generate the swarm's identities again (`swarm up` does it on first start)",
    );
  }
  return new TextEncoder().encode(seed);
}

/** The identity a seed stands for, looked up in the registry by its public key. */
export function identityForSeed(seed: Uint8Array, registry: IdentityRegistry): SigningIdentity {
  const publicKey = publicKeyOfSeed(seed);
  const record = registry.get(publicKey);
  if (!record) {
    throw new BadInputError(
      `the nkey in NATS_NKEY (${publicKey}) is not in the identity registry` +
        "; " +
        "use the seed and the identities.json of the same provisioning",
    );
  }
  return { record, seed };
}

/**
 * The orchestrator's part: write every record of its registry into the
 * bucket, each signed with its own key. Entries of the bucket that the
 * file no longer has are deleted (a revoked identity).
 */
export async function publishIdentities(
  nc: NatsConnection,
  registry: IdentityRegistry,
  signer: EventSigner,
  opts: { replicas?: number } = {},
): Promise<void> {
  let kv: KV;
  try {
    kv = await new Kvm(nc).create(IDENTITIES_BUCKET, { history: 1, replicas: opts.replicas ?? 1 });
  } catch (err) {
    throw new InfrastructureError(
      `could not create the KV bucket ${IDENTITIES_BUCKET}: ${errorMessage(err)}`,
      "the orchestrator's NATS user must be allowed to create it",
      { cause: err },
    );
  }
  const records = registry.records();
  const keep = new Set(records.map((r) => r.public_key));
  for (const record of records) {
    const entry: BucketEntry = {
      record,
      signed_by: signer.publicKey,
      signature: signer.signBytes(identityBytes(record)),
    };
    await kv.put(record.public_key, JSON.stringify(entry));
  }
  for await (const key of await kv.keys()) {
    if (!keep.has(key)) await kv.delete(key);
  }
}

export interface RegistrySource {
  registry: IdentityRegistry;
  /** Stop watching the bucket. */
  stop(): Promise<void>;
}

/**
 * The registry of this process: the file (if given) and the bucket (if it
 * exists), watched. Never creates the bucket.
 */
export async function openIdentityRegistry(
  nc: NatsConnection,
  opts: {
    file?: IdentityRegistryFile;
    log?: Logger;
    onChange?: (registry: IdentityRegistry) => void;
  },
): Promise<RegistrySource> {
  const log = opts.log ?? silentLogger;
  const registry = new IdentityRegistry(opts.file);
  const jsm = await openJetStreamManager(nc, { check: false });
  const exists = await jsm.streams.info(`KV_${IDENTITIES_BUCKET}`).then(
    () => true,
    () => false,
  );
  if (!exists) return { registry, stop: async () => undefined };

  const kv = await new Kvm(nc).open(IDENTITIES_BUCKET);
  const raw = new Map<string, BucketEntry>();
  const apply = () => {
    const candidates = [...raw.values()].filter(
      (e) => e.record.role === "orchestrator" && e.signed_by === e.record.public_key,
    );
    const anchors = registry.anchorsForBucket(candidates.map((e) => e.record));
    const trusted: IdentityRecord[] = [];
    for (const [key, e] of raw) {
      const ok =
        key === e.record.public_key &&
        anchors.has(e.signed_by) &&
        verifyBytes(e.signed_by, identityBytes(e.record), e.signature);
      if (ok) trusted.push(e.record);
      else
        log.warn({ key, signed_by: e.signed_by }, "identity registry entry not trusted; ignored");
    }
    registry.setBucketEntries(trusted);
    opts.onChange?.(registry);
  };
  const take = (e: KvEntry | KvWatchEntry) => {
    if (e.operation !== "PUT") {
      raw.delete(e.key);
      return;
    }
    try {
      raw.set(e.key, parseWith(BucketEntry, e.json(), `${IDENTITIES_BUCKET}/${e.key}`));
    } catch (err) {
      raw.delete(e.key);
      log.warn({ key: e.key, err: errorMessage(err) }, "invalid identity registry entry; ignored");
    }
  };

  // What the bucket holds now, read before the first decision; then every change.
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e) take(e);
  }
  apply();
  const watch = await kv.watch();
  const loop = (async () => {
    for await (const e of watch) {
      take(e);
      apply();
    }
  })().catch((err: unknown) =>
    log.warn({ err: errorMessage(err) }, "identity registry watch ended"),
  );
  return {
    registry,
    async stop() {
      watch.stop();
      await loop;
    },
  };
}

export { IdentityRecord };
