/**
 * The traced process's context manager (src/telemetry/context-manager.ts):
 * `context.with` makes its context active inside, across awaits, and leaves
 * the caller's async frame as it found it. With OpenTelemetry's plain
 * AsyncLocalStorage manager, Node 24 leaves a frame behind after the first
 * `with`, and from then on queueMicrotask (which nats.js flushes with) wraps
 * every callback in an AsyncResource: a cost on every async step of a
 * traced process.
 */
import { executionAsyncResource } from "node:async_hooks";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTracing, stopTracing, tracer } from "../../src/telemetry/index.ts";

beforeAll(async () => {
  expect(
    await startTracing({ serviceName: "squad-test", exporter: new InMemorySpanExporter() }),
  ).toBe(true);
});
afterAll(() => stopTracing());

/** How Node runs a microtask queued now: wrapped in an AsyncResource ("frame") or not ("none"). */
function microtaskPath(): Promise<"frame" | "none"> {
  return new Promise((resolve) => {
    const cb = () =>
      resolve(
        (executionAsyncResource() as { callback?: unknown }).callback === cb ? "frame" : "none",
      );
    queueMicrotask(cb);
  });
}

describe("context.with in a traced process", () => {
  it("runs in its context across awaits, and leaves no async frame behind", async () => {
    expect(await microtaskPath()).toBe("none");
    const span = tracer().startSpan("attempt");
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    const seen = await context.with(ctx, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return trace.getActiveSpan();
    });
    span.end();
    expect(seen).toBe(span);
    expect(trace.getActiveSpan()).toBeUndefined();
    // Every await and microtask after it runs as before the first `with`.
    expect(await microtaskPath()).toBe("none");
  });
});
