import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { backoffDelay } from "../backoff.ts";
import { JS_CODES } from "./jetstream-codes.ts";

/**
 * Errors that a server restart, a leader election or a reconnect produce and
 * that go away by themselves: worth a bounded retry. Everything else (closed
 * connection, permissions, a config the server rejects) is final.
 */
export function isTransientNatsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    err instanceof errors.AuthorizationError ||
    err instanceof errors.PermissionViolationError ||
    err instanceof errors.InvalidArgumentError
  ) {
    return false;
  }
  if (err instanceof errors.TimeoutError || err instanceof errors.NoRespondersError) return true;
  if (err instanceof errors.ConnectionError) return true;
  if (err instanceof errors.RequestError) return err.isNoResponders();
  // "JetStream system temporarily unavailable" and other 503s during elections.
  if (err instanceof JetStreamApiError)
    return err.status === 503 || err.code === JS_CODES.temporarilyUnavailable;
  // Publishing while no stream is loaded yet answers with no responders, which the
  // client reports as JetStreamNotEnabled; pull requests report status 503/"heartbeats missed".
  const name = err.name;
  if (name === "JetStreamNotEnabled") return true;
  if (name === "JetStreamStatusError") {
    const code = (err as Error & { code?: number }).code;
    return code === 503 || code === 408;
  }
  if (name === "JetStreamError" && /heartbeats missed|no responders/i.test(err.message))
    return true;
  return /no responders|timeout|disconnect|reconnect/i.test(err.message);
}

export function isClosedConnectionError(err: unknown): boolean {
  return err instanceof errors.ClosedConnectionError;
}

export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * About 24 s in all: nats-server's raft notices a lost stream leader after
 * 4-9 s (its election timeouts) and then elects one, and a loaded machine
 * adds to that; 8 attempts (about 12 s) were seen to run out.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 12, baseDelayMs: 200, maxDelayMs: 3000 };

/**
 * Run `fn` until it succeeds, a non-transient error occurs or the attempts run
 * out; `onRetry` sees each transient failure (for a log line).
 */
export async function retryTransient<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !isTransientNatsError(err)) throw err;
      const delay = backoffDelay(attempt, policy.baseDelayMs, policy.maxDelayMs);
      onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
