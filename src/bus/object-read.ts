/**
 * Reading a JetStream object store without consumers: an object's chunks
 * one STREAM.MSG.GET each (next message on its chunk subject), the list of
 * objects from the stream's subjects. Every request is answered by the
 * stream's leader, so it works as long as the stream has one.
 *
 * Why not @nats-io/obj's get() and list(): each creates an ephemeral
 * (ordered push) consumer, and nats-server 2.9.10 places an R1 consumer on
 * any peer of the stream, a SIGKILLed one included, for as long as the
 * peer stays in the stream's peer set (minutes, seen: more than five). The
 * create request then goes unanswered and the client's JetStream timeout
 * (5 s) fails about one read in three on a 3-node cluster that lost a node
 * (docs/reliability.md, the cluster scenario).
 */
import { createHash } from "node:crypto";
import type { JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import type { ObjectInfo } from "@nats-io/obj";
import { InfrastructureError } from "../errors.ts";

/** What an object's metadata message holds (@nats-io/obj's ObjectInfo, as stored). */
type StoredObjectInfo = Pick<ObjectInfo, "name" | "nuid" | "size" | "chunks" | "digest"> & {
  deleted?: boolean;
  options?: { link?: unknown };
};

const DIGEST_PREFIX = "SHA-256=";

function streamOf(bucket: string): string {
  return `OBJ_${bucket}`;
}

/** Base64url without padding: @nats-io/obj 3.x pads its digests, older clients did not. */
function unpadded(b64url: string): string {
  return b64url.replace(/=+$/, "");
}

/**
 * The bytes of the object `info` describes (from the store's info(), which
 * reads the metadata with STREAM.MSG.GET), checked against its size and
 * SHA-256. A chunk that is gone (the object replaced or deleted meanwhile)
 * is an InfrastructureError: the caller reads again.
 */
export async function readObject(
  jsm: JetStreamManager,
  bucket: string,
  info: StoredObjectInfo,
): Promise<Uint8Array> {
  if (info.options?.link) {
    throw new InfrastructureError(
      `${info.name} in the object store ${bucket} is a link; links are not read here`,
    );
  }
  const stream = streamOf(bucket);
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const out = new Uint8Array(info.size);
  const sha = createHash("sha256");
  let at = 0;
  let seq = 0;
  for (let i = 0; i < info.chunks; i++) {
    // The typings name next_by_subj for direct get only; STREAM.MSG.GET takes it too (2.9+).
    const query = { seq: seq + 1, next_by_subj: subject } as unknown as MsgRequest;
    const m: StoredMsg | null = await jsm.streams.getMessage(stream, query);
    if (!m) {
      throw new InfrastructureError(
        `${info.name} in the object store ${bucket}: chunk ${i + 1} of ${info.chunks} is gone (replaced or deleted meanwhile?)`,
      );
    }
    if (at + m.data.length > out.length) break;
    out.set(m.data, at);
    sha.update(m.data);
    at += m.data.length;
    seq = m.seq;
  }
  const digest = DIGEST_PREFIX + sha.digest("base64url");
  if (at !== info.size || unpadded(digest) !== unpadded(info.digest)) {
    throw new InfrastructureError(
      `${info.name} in the object store ${bucket} is corrupt: read ${at} of ${info.size} bytes, digest ${digest}, expected ${info.digest}`,
    );
  }
  return out;
}

/**
 * Every live object's metadata: the stream's metadata subjects (STREAM.INFO
 * with a subjects filter), then the last message of each.
 */
export async function listObjects(
  jsm: JetStreamManager,
  bucket: string,
): Promise<StoredObjectInfo[]> {
  const stream = streamOf(bucket);
  const si = await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.M.>` });
  const out: StoredObjectInfo[] = [];
  for (const subject of Object.keys(si.state.subjects ?? {})) {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (!m) continue;
    const info = m.json<StoredObjectInfo>();
    if (!info.deleted) out.push(info);
  }
  return out;
}
