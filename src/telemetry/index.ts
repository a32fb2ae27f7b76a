/**
 * The telemetry layer: OpenTelemetry traces (one per mission, joined across
 * processes by W3C trace context in NATS headers) and Prometheus metrics.
 * Below the bus: it imports only the schema and the base (errors, log).
 */
export { startTracing, stopTracing, flushTracing, tracingEnabled, tracer } from "./tracing.ts";
export { traceConfig, type TraceConfig } from "./trace-config.ts";
export {
  contextOf,
  injectSpanContext,
  injectTraceContext,
  TRACEPARENT,
  TRACESTATE,
} from "./trace-context.ts";
export {
  closeMissionSpan,
  endMissionSpan,
  missionContext,
  missionSpan,
  missionTraceIds,
  openMissionSpan,
} from "./mission-trace.ts";
export {
  endAttemptSpan,
  endModelSpan,
  inMissionSpan,
  inSpan,
  noteAttemptOutcome,
  startAttemptSpan,
  startModelSpan,
  shellSpan,
  tracePublish,
  toolSpan,
  type AttemptSubject,
} from "./spans.ts";
export { enableMetrics, metrics, metricsText, type ConsumerCounts } from "./metrics.ts";
export { notePublished } from "./published-events.ts";
export { GEN_AI, SQUAD } from "./attributes.ts";
