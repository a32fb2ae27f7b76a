import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/**
 * The JetStream API error codes the swarm acts on, named once: the client's
 * own constants where it has them, the rest as nats-server's errors.json
 * numbers them.
 */
export const JS_CODES = {
  consumerNotFound: JetStreamApiCodes.ConsumerNotFound, // 10014
  streamNotFound: JetStreamApiCodes.StreamNotFound, // 10059
  /** Another stream has that name (with another config). */
  streamNameInUse: 10058,
  /** Subjects overlap with an existing stream's. */
  subjectsOverlap: 10065,
  /** "no suitable peers for placement": fewer JetStream servers than replicas. */
  noSuitablePeers: 10005,
  /** "replicas > 1 not supported in non-clustered mode". */
  replicasWithoutCluster: 10074,
  /** "JetStream system temporarily unavailable" (during elections). */
  temporarilyUnavailable: 10008,
  /** Consumer create on an existing one: name in use, already exists, or another config. */
  consumerExists: [10013, 10105, 10148],
  /** A KV update whose expected revision is not the last: someone else wrote first. */
  wrongLastSequence: [
    JetStreamApiCodes.StreamWrongLastSequence, // 10071
    JetStreamApiCodes.StreamWrongLastSequenceUnknown, // 10164
  ],
} as const;

/** The API error code of a JetStream API error, else undefined. */
export function jsApiCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

/** `err` is a JetStream API error with one of `codes`. */
export function hasJsCode(
  err: unknown,
  ...codes: ReadonlyArray<number | readonly number[]>
): boolean {
  const code = jsApiCode(err);
  return code !== undefined && codes.flat().includes(code);
}
