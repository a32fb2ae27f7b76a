/**
 * Event signatures: who sent an event, proven with the sender's nkey.
 *
 * A publisher that holds a SigningIdentity adds two headers to every event:
 * `Squad-Signer` (its public key, "U...") and `Squad-Signature` (base64url
 * Ed25519 signature, no padding) over
 *
 *     "squad-event-v1\n" + <subject> + "\n" + <the exact payload bytes>
 *
 * The subject is signed so that an event can't be replayed on another
 * subject (a task for one agent re-published for another); the prefix keeps
 * these signatures apart from anything else the same key signs (the NATS
 * server's connect nonce). The JSON is not re-encoded: the bytes on the wire
 * are the bytes signed, so any client in any language can verify.
 *
 * Keys are decoded and checked with `@nats-io/nkeys`; signing and
 * verification use Node's native Ed25519 (the library's pure-JS one takes
 * 15-20 ms per call on a busy machine, which would stall the event loop).
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { BadInputError } from "../errors.ts";
import {
  SIGNATURE_HEADER,
  SIGNER_HEADER,
  type IdentityRecord,
  type SigningIdentity,
} from "./identity.ts";

/** Domain separation of an event signature (bumped only if what is signed changes). */
export const EVENT_SIGNATURE_CONTEXT = "squad-event-v1";

const encoder = new TextEncoder();

/** The bytes an event's signature covers (pure). */
export function signedBytes(subject: string, data: Uint8Array): Uint8Array {
  const head = encoder.encode(`${EVENT_SIGNATURE_CONTEXT}\n${subject}\n`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head, 0);
  out.set(data, head.length);
  return out;
}

/** Signs event bytes as one identity. */
export interface EventSigner {
  readonly record: IdentityRecord;
  /** The public key, also the value of the Squad-Signer header. */
  readonly publicKey: string;
  /** The headers to add to a message on `subject` carrying `data`. */
  sign(subject: string, data: Uint8Array): { [SIGNER_HEADER]: string; [SIGNATURE_HEADER]: string };
  /** A raw signature over `bytes` (base64url), for other signed records (the registry's KV entries). */
  signBytes(bytes: Uint8Array): string;
}

/** The public key ("U...") of an nkey user seed ("SU..."); a BadInputError when it is not one. */
export function publicKeyOfSeed(seed: Uint8Array): string {
  try {
    const pub = fromSeed(seed).getPublicKey();
    if (!pub.startsWith("U")) throw new Error(`a ${pub[0]}-key seed, not a user seed (SU...)`);
    return pub;
  } catch (err) {
    throw new BadInputError(
      `not an nkey user seed: ${(err as Error).message}` +
        "; " +
        "NATS_NKEY names a file holding one seed (SU...), as `nk -gen user` writes it",
      { cause: err },
    );
  }
}

export function createEventSigner(identity: SigningIdentity): EventSigner {
  const publicKey = publicKeyOfSeed(identity.seed);
  if (publicKey !== identity.record.public_key) {
    throw new BadInputError(
      `the seed's public key ${publicKey} is not the one registered for ${identity.record.name} (${identity.record.public_key})` +
        "; " +
        "NATS_NKEY and SWARM_IDENTITIES must come from the same provisioning",
    );
  }
  // The raw 32-byte seed sits after the 2 prefix bytes of the decoded seed (before the CRC).
  const raw = base32Decode(new TextDecoder().decode(identity.seed).trim()).subarray(2, 34);
  const key = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: b64url(raw), x: b64url(rawPublicKey(publicKey)) },
    format: "jwk",
  });
  const signBytes = (bytes: Uint8Array) => b64url(sign(null, bytes, key));
  return {
    record: identity.record,
    publicKey,
    signBytes,
    sign: (subject, data) => ({
      [SIGNER_HEADER]: publicKey,
      [SIGNATURE_HEADER]: signBytes(signedBytes(subject, data)),
    }),
  };
}

/** Verified public keys, kept so that a busy receiver decodes each key once. */
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_KEYS_KEPT = 1024;

function publicKeyObject(publicKey: string): KeyObject {
  let key = publicKeys.get(publicKey);
  if (!key) {
    key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: b64url(rawPublicKey(publicKey)) },
      format: "jwk",
    });
    if (publicKeys.size >= PUBLIC_KEYS_KEPT) publicKeys.clear();
    publicKeys.set(publicKey, key);
  }
  return key;
}

/** True when `signature` (base64url) is `publicKey`'s signature of `bytes`; false for anything malformed. */
export function verifyBytes(publicKey: string, bytes: Uint8Array, signature: string): boolean {
  let key: KeyObject;
  try {
    key = publicKeyObject(publicKey);
  } catch {
    return false;
  }
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false; // 64 bytes, base64url, no padding
  return verify(null, bytes, key, Buffer.from(signature, "base64url"));
}

export type SignatureCheck =
  { ok: true; signer: IdentityRecord } | { ok: false; reason: string; signer_key: string | null };

/** What a receiver has of a message to check its signature. */
export interface SignedMessage {
  subject: string;
  data: Uint8Array;
  /** Header lookup; "" or undefined for a missing header (as nats.js answers). */
  header(name: string): string | undefined;
}

/**
 * Checks a message's signature against the registry (pure but for the
 * crypto): the signer must be a known identity and the signature valid over
 * this subject and these bytes.
 */
export function checkSignature(
  msg: SignedMessage,
  lookup: (publicKey: string) => IdentityRecord | undefined,
): SignatureCheck {
  const signer = msg.header(SIGNER_HEADER) || null;
  const signature = msg.header(SIGNATURE_HEADER) || null;
  if (!signer || !signature) {
    return { ok: false, reason: "unsigned (no Squad-Signer/Squad-Signature)", signer_key: signer };
  }
  const record = lookup(signer);
  if (!record)
    return { ok: false, reason: `signer ${signer} is not in the registry`, signer_key: signer };
  if (!verifyBytes(signer, signedBytes(msg.subject, msg.data), signature)) {
    return {
      ok: false,
      reason: `bad signature for ${record.name} (not over this subject and payload)`,
      signer_key: signer,
    };
  }
  return { ok: true, signer: record };
}

/** The 32 raw bytes of a user public key, after nkeys has checked its prefix and CRC. */
function rawPublicKey(publicKey: string): Uint8Array {
  fromPublic(publicKey); // throws on a bad CRC or prefix
  if (!publicKey.startsWith("U")) throw new Error(`not a user public key: ${publicKey}`);
  return base32Decode(publicKey).subarray(1, 33);
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as nkeys encodes (input already checked by nkeys). */
function base32Decode(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    const i = BASE32.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${c}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}
