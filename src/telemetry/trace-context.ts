/**
 * W3C trace context (`traceparent`, `tracestate`) in NATS message headers:
 * injected by the publisher, read back by whoever consumes the message.
 * These headers are not covered by the event signature (event-signing.ts
 * signs subject and payload): a forged traceparent can mislabel a trace,
 * never change what an event says or who sent it.
 */
import { context, propagation, ROOT_CONTEXT, type Context } from "@opentelemetry/api";
import { tracingEnabled } from "./tracing.ts";

/** What a message's headers look like to this layer (nats.js MsgHdrs fits). */
export interface HeaderReader {
  get(name: string): string;
  has?(name: string): boolean;
}
export interface HeaderWriter {
  set(name: string, value: string): void;
}

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

/** Writes the trace context of `ctx` (the active one by default) into `headers`. */
export function injectTraceContext(headers: HeaderWriter, ctx: Context = context.active()): void {
  if (!tracingEnabled()) return;
  propagation.inject(ctx, headers, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
}

/**
 * The trace context a message carries, as a Context to start spans in (the
 * root context when it carries none, or when tracing is off).
 */
export function contextOf(msg: { headers?: HeaderReader | undefined }): Context {
  const headers = msg.headers;
  if (!tracingEnabled() || !headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => {
      const v = carrier.get(key);
      return v === "" ? undefined : v;
    },
    keys: () => [TRACEPARENT, TRACESTATE],
  });
}
