import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "../backoff.ts";
import type { Logger } from "../log.ts";

/**
 * A `fetch` for model clients that do not retry on their own (ChatOllama
 * ignores `maxRetries`): bounded retries with exponential backoff and jitter
 * on connection errors and 5xx answers, and a timeout that covers waiting for
 * the response headers and every silence between two body chunks, so a server
 * that stops answering mid-stream fails instead of hanging, while a long but
 * steady generation is never cut.
 *
 * It sits under the client (ChatOllama's documented `fetch` option), so it
 * works the same for `invoke`, `createAgent`'s tool-bound calls and
 * `withStructuredOutput`.
 */
export interface ResilientFetchOptions {
  /** Extra attempts after the first (0 = no retry). */
  maxRetries: number;
  /** Longest wait for the headers, and for each next body chunk. */
  timeoutMs: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  logger?: Logger;
  /** The transport underneath; the global fetch by default. */
  fetch?: typeof fetch;
  /**
   * Aborts every request made through this fetch, in flight or retrying, as
   * well as each request's own signal does. ChatOllama never gives the call's
   * signal to its HTTP request, so without this an aborted task's model call
   * would hold its connection (and the server) until the answer came.
   */
  signal?: AbortSignal;
}

/** Thrown (as the abort reason) when the server is silent for longer than `timeoutMs`. */
export class ModelRequestTimeoutError extends Error {
  override readonly name = "TimeoutError";
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export function createResilientFetch(opts: ResilientFetchOptions): typeof fetch {
  const base = opts.fetch ?? fetch;
  const initialDelayMs = opts.initialDelayMs ?? 500;
  const maxDelayMs = opts.maxDelayMs ?? 8_000;

  const resilientFetch = async (
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> => {
    const callerSignal = anySignal(init?.signal ?? undefined, opts.signal);
    const callerInit = callerSignal ? { ...init, signal: callerSignal } : init;
    for (let attempt = 0; ; attempt++) {
      callerSignal?.throwIfAborted();
      const last = attempt >= opts.maxRetries;
      let failure: unknown;
      try {
        const res = await fetchWithTimeout(base, input, callerInit, opts.timeoutMs);
        if (res.status < 500 || last) return res;
        failure = `HTTP ${res.status}`;
        await res.body?.cancel().catch(() => undefined);
      } catch (err) {
        if (last || !isRetryableThrow(err, callerSignal)) throw err;
        failure = err;
      }
      const delay = backoffDelay(attempt + 1, initialDelayMs, maxDelayMs);
      opts.logger?.warn(
        { url: urlOf(input), attempt: attempt + 1, delay_ms: delay, error: describe(failure) },
        "model request failed; retrying",
      );
      await sleep(delay, undefined, callerSignal ? { signal: callerSignal } : undefined);
    }
  };
  return resilientFetch as typeof fetch;
}

async function fetchWithTimeout(
  base: typeof fetch,
  input: string | URL | Request,
  init: RequestInit | undefined,
  timeoutMs: number,
): Promise<Response> {
  const ctl = new AbortController();
  const callerSignal = init?.signal ?? undefined;
  const onCallerAbort = () => ctl.abort(callerSignal?.reason);
  callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const arm = (what: string) => {
    timer = setTimeout(
      () =>
        ctl.abort(
          new ModelRequestTimeoutError(`model server sent nothing for ${timeoutMs} ms (${what})`),
        ),
      timeoutMs,
    );
  };
  const disarm = () => clearTimeout(timer);
  const done = () => {
    disarm();
    callerSignal?.removeEventListener("abort", onCallerAbort);
  };

  arm("waiting for the response");
  let res: Response;
  try {
    res = await base(input, { ...init, signal: ctl.signal });
  } catch (err) {
    done();
    throw ctl.signal.aborted ? ctl.signal.reason : err;
  } finally {
    disarm();
  }
  if (!res.body || NULL_BODY_STATUSES.has(res.status)) {
    done();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      arm("waiting for the next chunk");
      try {
        const { done: finished, value } = await reader.read();
        disarm();
        if (finished) {
          done();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (err) {
        done();
        controller.error(ctl.signal.aborted ? ctl.signal.reason : err);
      }
    },
    async cancel(reason) {
      done();
      await reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

function anySignal(
  a: AbortSignal | undefined,
  b: AbortSignal | undefined,
): AbortSignal | undefined {
  if (!a || !b) return a ?? b;
  return AbortSignal.any([a, b]);
}

/** Connection failures are retried; our own timeout and the caller's abort are not. */
function isRetryableThrow(err: unknown, callerSignal: AbortSignal | undefined): boolean {
  if (callerSignal?.aborted) return false;
  if (err instanceof ModelRequestTimeoutError) return false;
  if (err instanceof Error && err.name === "AbortError") return false;
  return true;
}

function urlOf(input: string | URL | Request): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

function describe(failure: unknown): string {
  if (typeof failure === "string") return failure;
  if (failure instanceof Error) {
    const cause = (failure as { cause?: unknown }).cause;
    const code =
      typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
    return typeof code === "string" ? `${failure.message} (${code})` : failure.message;
  }
  return String(failure);
}
