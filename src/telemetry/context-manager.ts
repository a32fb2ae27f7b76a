/**
 * The context manager of a traced process: OpenTelemetry's
 * AsyncLocalStorage one, except that `context.with` leaves the caller's
 * async context as it found it.
 *
 * Why: in Node 24, AsyncLocalStorage.run() ends with enterWith(previous
 * store), and when there was none that sets a frame holding "undefined"
 * instead of restoring the empty one. From then on everything the caller
 * goes on to do (every await, timer, nats.js flush) runs in a non-empty
 * frame, where Node's queueMicrotask wraps each callback in an AsyncResource
 * and every promise carries the frame: a traced swarm paid for that on every
 * async step after the first `context.with` of a call chain (the SDK's own
 * export calls it too). Running `with` inside a snapshot of the caller's
 * frame puts that frame back when it returns. Loaded only when tracing is on.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";

export class FrameKeepingContextManager extends AsyncLocalStorageContextManager {
  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const inCallerFrame = AsyncLocalStorage.snapshot();
    return inCallerFrame(() => super.with(ctx, fn, thisArg, ...args));
  }
}
