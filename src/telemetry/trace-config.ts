/**
 * Whether and how a process exports traces, from the standard OpenTelemetry
 * variables (pure: the environment in, a decision out).
 *
 * Off unless one of OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER (other than
 * "none") is set: a swarm nobody asked to trace loads no SDK and pays nothing.
 * OTEL_SDK_DISABLED=true turns it off whatever else is set. The exporter is
 * OTLP over HTTP, protobuf (the specification's default) or JSON
 * (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL =
 * http/json); `console` prints spans on stdout, for a quick look. Endpoint,
 * headers, timeout and TLS files are read by the exporter itself from the
 * same standard variables.
 */
import { BadInputError } from "../errors.ts";

export type TraceProtocol = "http/protobuf" | "http/json";

export type TraceConfig =
  | { enabled: false }
  | {
      enabled: true;
      exporter: "otlp" | "console";
      protocol: TraceProtocol;
      /** OTEL_SERVICE_NAME, else the process's own default. */
      serviceName: string;
      /** OTEL_TRACES_SAMPLER_ARG for traceidratio samplers; 1 otherwise. */
      sampleRatio: number;
    };

const TRUE = new Set(["true", "1", "yes"]);

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function traceConfig(env: NodeJS.ProcessEnv, defaultServiceName: string): TraceConfig {
  if (TRUE.has((value(env, "OTEL_SDK_DISABLED") ?? "").toLowerCase())) return { enabled: false };
  const exporterName = value(env, "OTEL_TRACES_EXPORTER")?.toLowerCase();
  const endpoint =
    value(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? value(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  if (exporterName === "none") return { enabled: false };
  if (exporterName === undefined && endpoint === undefined) return { enabled: false };
  const exporters = (exporterName ?? "otlp").split(",").map((s) => s.trim());
  if (exporters.length !== 1 || (exporters[0] !== "otlp" && exporters[0] !== "console")) {
    throw new BadInputError(
      `OTEL_TRACES_EXPORTER=${exporterName}: use otlp (OTLP over HTTP), console or none`,
    );
  }
  const protocolText = (
    value(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ??
    value(env, "OTEL_EXPORTER_OTLP_PROTOCOL") ??
    "http/protobuf"
  ).toLowerCase();
  if (protocolText !== "http/protobuf" && protocolText !== "http/json") {
    throw new BadInputError(
      `OTLP protocol ${protocolText} is not supported: set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf or http/json (port 4318 of a collector)`,
    );
  }
  return {
    enabled: true,
    exporter: exporters[0],
    protocol: protocolText,
    serviceName: value(env, "OTEL_SERVICE_NAME") ?? defaultServiceName,
    sampleRatio: sampleRatio(env),
  };
}

/** OTEL_TRACES_SAMPLER: always_on (default), always_off, traceidratio and their parentbased_ forms. */
function sampleRatio(env: NodeJS.ProcessEnv): number {
  const sampler = (value(env, "OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  switch (sampler) {
    case "always_on":
    case "parentbased_always_on":
      return 1;
    case "always_off":
    case "parentbased_always_off":
      return 0;
    case "traceidratio":
    case "parentbased_traceidratio": {
      const arg = Number(value(env, "OTEL_TRACES_SAMPLER_ARG") ?? "1");
      if (!Number.isFinite(arg) || arg < 0 || arg > 1) {
        throw new BadInputError(
          `OTEL_TRACES_SAMPLER_ARG=${env.OTEL_TRACES_SAMPLER_ARG}: a ratio between 0 and 1`,
        );
      }
      return arg;
    }
    default:
      throw new BadInputError(
        `OTEL_TRACES_SAMPLER=${sampler}: use parentbased_always_on, parentbased_traceidratio (with OTEL_TRACES_SAMPLER_ARG) or always_off`,
      );
  }
}
