/**
 * W3C trace context (`traceparent`, `tracestate`) in NATS message headers:
 * injected by the publisher, read back by whoever consumes the message.
 * These headers are not covered by the event signature (event-signing.ts
 * signs subject and payload): a forged traceparent can mislabel a trace,
 * never change what an event says or who sent it.
 */
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Context,
  type SpanContext,
} from "@opentelemetry/api";
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
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext && isSpanContextValid(spanContext)) injectSpanContext(headers, spanContext);
}

/**
 * Writes one span's context as W3C `traceparent` (and `tracestate` when it
 * has one): what the W3C propagator writes, without its lookups and checks,
 * for a span this process started (its ids are valid by construction). The
 * publisher does it for every event of a mission.
 */
export function injectSpanContext(headers: HeaderWriter, sc: SpanContext): void {
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
  headers.set(TRACEPARENT, `00-${sc.traceId}-${sc.spanId}-${flags}`);
  if (sc.traceState) headers.set(TRACESTATE, sc.traceState.serialize());
}

/**
 * The trace context a message carries, as a Context to start spans in (the
 * root context when it carries none, or when tracing is off).
 */
export function contextOf(msg: { headers?: HeaderReader | undefined }): Context {
  // Tracing off: the headers are not even read (nats.js decodes them on first access).
  if (!tracingEnabled()) return ROOT_CONTEXT;
  const headers = msg.headers;
  if (!headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => {
      const v = carrier.get(key);
      return v === "" ? undefined : v;
    },
    keys: () => [TRACEPARENT, TRACESTATE],
  });
}
