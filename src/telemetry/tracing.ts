/**
 * The process's tracer. Off by default: then `tracer()` is the API's no-op
 * tracer, no SDK module is ever loaded, and every helper of this layer
 * returns after one boolean check. `startTracing` (called once per process
 * when it connects to NATS, see src/bus/connect.ts) reads the OTEL_*
 * variables (trace-config.ts) and, only when they ask for traces, imports
 * the SDK, registers it globally (AsyncLocalStorage context that keeps the
 * caller's async frame, context-manager.ts; W3C trace context propagator)
 * and flushes it when the process ends.
 */
import { context, propagation, trace, type Tracer } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace";
import { traceConfig, type TraceConfig } from "./trace-config.ts";
import { forcedIds } from "./forced-ids.ts";

export const TRACER_NAME = "squad";

interface Running {
  config: Extract<TraceConfig, { enabled: true }>;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

let running: Running | null = null;
let starting: Promise<boolean> | null = null;

/** True once an SDK is registered: the helpers record spans only then. */
export function tracingEnabled(): boolean {
  return running !== null;
}

/** The sampling ratio of root traces (1 when off: nothing is recorded anyway). */
export function sampleRatio(): number {
  return running?.config.sampleRatio ?? 1;
}

export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

export interface StartTracingOptions {
  env?: NodeJS.ProcessEnv;
  /** service.name when OTEL_SERVICE_NAME is unset, e.g. "squad-orchestrator". */
  serviceName: string;
  /** Extra resource attributes (e.g. service.instance.id). */
  attributes?: Record<string, string>;
  /**
   * Tests: export here (e.g. an InMemorySpanExporter), span by span, whatever
   * the environment says.
   */
  exporter?: SpanExporter;
}

/**
 * Starts tracing if the environment asks for it (or an exporter is given);
 * idempotent: the first call decides for the process. Resolves true when
 * spans are recorded.
 */
export function startTracing(opts: StartTracingOptions): Promise<boolean> {
  if (starting) return starting;
  const env = opts.env ?? process.env;
  const config: TraceConfig = opts.exporter
    ? {
        enabled: true,
        exporter: "otlp",
        protocol: "http/json",
        serviceName: opts.serviceName,
        sampleRatio: 1,
      }
    : traceConfig(env, opts.serviceName);
  if (!config.enabled) return Promise.resolve(false);
  starting = register(config, opts).then(
    () => true,
    (err: unknown) => {
      starting = null;
      throw err;
    },
  );
  return starting;
}

async function register(
  config: Extract<TraceConfig, { enabled: true }>,
  opts: StartTracingOptions,
): Promise<void> {
  const [sdk, { FrameKeepingContextManager }, core, resources] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("./context-manager.ts"),
    import("@opentelemetry/core"),
    import("@opentelemetry/resources"),
  ]);
  const exporter = opts.exporter ?? (await createExporter(config));
  const processor = opts.exporter
    ? new sdk.SimpleSpanProcessor({ exporter })
    : new sdk.BatchSpanProcessor({ exporter, scheduledDelayMillis: 1000 });
  // The process's defaults first; OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over them.
  const resource = resources
    .defaultResource()
    .merge(
      resources.resourceFromAttributes({
        "service.name": config.serviceName,
        ...(opts.attributes ?? {}),
      }),
    )
    .merge(
      resources.detectResources({
        detectors: [resources.resourceAttributesEnvDetector, resources.serviceNameEnvDetector],
      }),
    );
  const root =
    config.sampleRatio >= 1
      ? new sdk.AlwaysOnSampler()
      : config.sampleRatio <= 0
        ? new sdk.AlwaysOffSampler()
        : new sdk.TraceIdRatioBasedSampler(config.sampleRatio);
  const random = new sdk.RandomIdGenerator();
  const provider = new sdk.TracerProvider({
    resource,
    spanProcessors: [processor],
    sampler: new sdk.ParentBasedSampler({ root }),
    idGenerator: forcedIds(random),
  });
  const contextManager = new FrameKeepingContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  running = {
    config,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
  // A process whose work is done ends when its event loop is empty; export what is left first.
  let flushed = false;
  process.once("beforeExit", () => {
    if (flushed) return;
    flushed = true;
    void provider.forceFlush().catch(() => undefined);
  });
}

async function createExporter(
  config: Extract<TraceConfig, { enabled: true }>,
): Promise<SpanExporter> {
  if (config.exporter === "console") {
    const { ConsoleSpanExporter } = await import("@opentelemetry/sdk-trace");
    return new ConsoleSpanExporter();
  }
  if (config.protocol === "http/json") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  return new OTLPTraceExporter();
}

/** Export every ended span now (a test, or a process about to exit). */
export async function flushTracing(): Promise<void> {
  await running?.forceFlush();
}

/** Flush, then unregister: the process is back to the no-op tracer (tests). */
export async function stopTracing(): Promise<void> {
  const r = running;
  running = null;
  starting = null;
  if (!r) return;
  await r.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
}
