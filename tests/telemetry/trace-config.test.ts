/**
 * When tracing is on, from the standard OTEL_* variables (pure): off when
 * none is set, OTEL_SDK_DISABLED wins, protocols and samplers named by the
 * specification, and a clear bad-input error for what is not supported.
 */
import { describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import { traceConfig } from "../../src/telemetry/index.ts";

const on = (extra: Record<string, string | number>) => ({
  enabled: true,
  exporter: "otlp",
  protocol: "http/protobuf",
  serviceName: "squad-test",
  sampleRatio: 1,
  ...extra,
});

describe("traceConfig", () => {
  it.each([
    [{}, { enabled: false }],
    [{ OTEL_SERVICE_NAME: "x" }, { enabled: false }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }, on({})],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" }, on({})],
    [{ OTEL_TRACES_EXPORTER: "otlp" }, on({})],
    [{ OTEL_TRACES_EXPORTER: "console" }, on({ exporter: "console" })],
    [
      { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" },
      { enabled: false },
    ],
    [
      { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" },
      { enabled: false },
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" },
      on({ protocol: "http/json" }),
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      },
      on({}),
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SERVICE_NAME: "mine" },
      on({ serviceName: "mine" }),
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.25",
      },
      on({ sampleRatio: 0.25 }),
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER: "always_off" },
      on({ sampleRatio: 0 }),
    ],
  ])("%j → %j", (env, want) => {
    expect(traceConfig(env, "squad-test")).toEqual(want);
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: "zipkin" }, /OTEL_TRACES_EXPORTER=zipkin: use otlp/],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
      /protocol grpc is not supported: .*http\/protobuf or http\/json/,
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER: "jaeger_remote" },
      /OTEL_TRACES_SAMPLER=jaeger_remote/,
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_TRACES_SAMPLER: "traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "2",
      },
      /between 0 and 1/,
    ],
  ])("%j is bad input", (env, message) => {
    expect(() => traceConfig(env, "squad-test")).toThrow(BadInputError);
    expect(() => traceConfig(env, "squad-test")).toThrow(message);
  });
});
