/**
 * Span ids the caller chooses. A mission's trace id and root span id are
 * derived from its mission id (mission-trace.ts), so that every process can
 * put its spans in the mission's trace and under its root without being told,
 * and the orchestrator that opens (or, after a takeover, re-opens) the root
 * span gives it the same ids. The SDK's tracer asks its id generator
 * synchronously inside `startSpan`, so a value set just before that call and
 * cleared just after it is seen by that span alone.
 */
import type { IdGenerator } from "@opentelemetry/sdk-trace";

let next: { traceId: string; spanId: string } | null = null;

export function forcedIds(random: IdGenerator): IdGenerator {
  return {
    generateTraceId: () => next?.traceId ?? random.generateTraceId(),
    generateSpanId: () => next?.spanId ?? random.generateSpanId(),
  };
}

/** Runs `start` (a synchronous startSpan) with these ids for the span it creates. */
export function withIds<T>(ids: { traceId: string; spanId: string }, start: () => T): T {
  next = ids;
  try {
    return start();
  } finally {
    next = null;
  }
}
