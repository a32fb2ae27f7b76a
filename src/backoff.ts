/**
 * The one retry delay of the swarm: capped exponential backoff with full
 * jitter, a uniformly random delay in [0, min(max, base · 2^(attempt-1))].
 * Without the jitter every replica that lost NATS in the same restart would
 * retry in lockstep, and each retry wave would meet the server at once
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 */

/** The ceiling of the delay before retry `attempt` (1-based): base · 2^(attempt-1), at most `maxMs`. */
export function backoffCeiling(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * The delay before retry `attempt` (1-based), in ms. `random` is a number in
 * [0, 1): pass one to make the result deterministic (a pure caller, a test).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: number = Math.random(),
): number {
  return Math.round(random * backoffCeiling(attempt, baseMs, maxMs));
}
