/**
 * The spans of a mission's work, recorded through the SDK's in-memory
 * exporter: the trace context of a task_assigned travels in real NATS
 * headers from the publisher to the task puller on a real nats-server, the
 * attempt span is the publish span's child and the parent of the attempt's
 * shell commands, and its reports are events of it; the mission's root span has
 * the ids its children already point at; model calls against a fake OpenAI
 * server are GenAI spans with their tokens; agent tool calls are
 * execute_tool spans.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPublisher, createTaskPuller, ensureWorkerConsumer } from "../../src/bus/index.ts";
import { createChatModel } from "../../src/llm/chat-model.ts";
import { makeEvent } from "../../src/schema/index.ts";
import {
  closeMissionSpan,
  inMissionSpan,
  missionTraceIds,
  openMissionSpan,
  startTracing,
  stopTracing,
  tracer,
  tracingEnabled,
} from "../../src/telemetry/index.ts";
import { createAgentTools } from "../../src/tools/agent-tools.ts";
import { runShell } from "../../src/tools/shell.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { sequence, startFakeOpenAI, textReply } from "../helpers/fake-openai.ts";
import { useTaskBus } from "../helpers/task-bus.ts";

const exporter = new InMemorySpanExporter();
const bus = useTaskBus();
let workspace: string;

beforeAll(async () => {
  expect(await startTracing({ serviceName: "squad-test", exporter })).toBe(true);
  workspace = await mkdtemp(path.join(os.tmpdir(), "squad-spans-"));
});
afterAll(async () => {
  await stopTracing();
  await rm(workspace, { recursive: true, force: true });
});

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((s) => s.name === name);
const only = (name: string): ReadableSpan => {
  const found = named(name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;

describe("a task's trace across the bus", () => {
  it("goes from the publisher through NATS headers to the attempt span and its children", async () => {
    const missionId = "m-trace-across";
    const ids = missionTraceIds(missionId);
    const agent = "tracer";
    await ensureWorkerConsumer(bus.nc, agent);
    const workerNc = await bus.connect("tracer-replica");
    const workerPublisher = createPublisher(workerNc);
    const puller = bus.track(createTaskPuller(workerNc, { agent, slots: 1 }));
    const handled: string[] = [];
    const running = puller.run(async (d) => {
      // Its work runs in the attempt's context (children), its reports are published with it.
      const r = await context.with(d.traceContext, () =>
        runShell({ command: "echo traced", cwd: workspace, timeoutMs: 10_000 }),
      );
      await workerPublisher.publish(
        makeEvent(
          "task_completed",
          { mission_id: missionId, task_id: d.event.payload.task.id, source: `${agent}/w1` },
          {
            result: {
              status: "succeeded",
              summary: r.output.trim(),
              steps: [],
              verification: [],
              usage: { model: null, input_tokens: 0, output_tokens: 0 },
              attempt: 1,
              duration_ms: r.duration_ms,
              worker: `${agent}/w1`,
            },
          },
        ),
        { traceContext: d.traceContext },
      );
      handled.push(d.event.payload.task.id);
    });

    // A plain subscriber sees the message as it goes by (the work queue deletes it once acked).
    const sub = bus.nc.subscribe(`squad.tasks.${agent}`, { max: 1 });
    const seen = (async () => {
      for await (const m of sub) return m.headers?.get("traceparent");
      return undefined;
    })();
    await bus.nc.flush();
    await bus.publisher.publish(taskAssignedEvent(agent, "t1", { missionId }));
    await vi.waitFor(() => expect(named("task t1 attempt 1")).toHaveLength(1), { timeout: 20_000 });
    await puller.stop();
    await running;
    expect(handled).toEqual(["t1"]);

    // The dispatch: a PRODUCER span in the mission's trace, under the mission's root.
    const publish = only("publish task_assigned");
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.spanContext().traceId).toBe(ids.traceId);
    expect(parentOf(publish)).toBe(ids.spanId);
    expect(publish.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.destination.name": `squad.tasks.${agent}`,
      "squad.mission.id": missionId,
    });

    // Its context is in the message's headers, as W3C traceparent.
    expect(await seen).toBe(`00-${ids.traceId}-${idOf(publish)}-01`);

    // The attempt, in the "worker": the publish span's child, read from those headers.
    const attempt = only("task t1 attempt 1");
    expect(attempt.kind).toBe(SpanKind.CONSUMER);
    expect(attempt.spanContext().traceId).toBe(ids.traceId);
    expect(parentOf(attempt)).toBe(idOf(publish));
    expect(attempt.parentSpanContext?.isRemote).toBe(true);
    expect(attempt.attributes).toMatchObject({
      "squad.mission.id": missionId,
      "squad.task.id": "t1",
      "squad.task.attempt": 1,
      "squad.agent": agent,
      "squad.delivery.count": 1,
      "squad.task.outcome": "succeeded",
    });

    // Its command and its report are its children.
    const shell = only("shell");
    expect(parentOf(shell)).toBe(idOf(attempt));
    expect(shell.attributes).toMatchObject({
      "process.command_line": "echo traced",
      "process.exit.code": 0,
    });
    // Its reports are events of the attempt span, sent with its context.
    expect(named("publish task_completed")).toEqual([]);
    expect(attempt.events.map((e) => e.name)).toEqual(["publish task_completed"]);
    expect(attempt.events[0]!.attributes).toMatchObject({
      "messaging.destination.name": "squad.coordination",
    });
  });

  it("opens the mission's root span with the ids its children point at", () => {
    const missionId = "m-root-ids";
    openMissionSpan(missionId, { title: "Root", startTime: "2026-01-01T00:00:00.000Z" });
    openMissionSpan(missionId); // idempotent: one span
    closeMissionSpan(missionId, "failed", "t1 failed");
    const root = only(`mission ${missionId}`);
    expect(root.spanContext()).toMatchObject(missionTraceIds(missionId));
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.startTime[0]).toBe(Date.parse("2026-01-01T00:00:00.000Z") / 1000);
    expect(root.status).toEqual({ code: SpanStatusCode.ERROR, message: "t1 failed" });
    expect(root.attributes).toMatchObject({
      "squad.mission.id": missionId,
      "squad.mission.title": "Root",
      "squad.mission.status": "failed",
    });
    // Another process derives the same ids.
    expect(missionTraceIds(missionId)).toEqual(missionTraceIds(missionId));
    expect(missionTraceIds("m-other").traceId).not.toBe(missionTraceIds(missionId).traceId);
  });
});

describe("work of the orchestrator for a mission", () => {
  it("runs in a child span of the mission's root, and a throw marks it as an error", async () => {
    const missionId = "m-planning";
    const ids = missionTraceIds(missionId);
    expect(await inMissionSpan(missionId, "plan", async () => 42)).toBe(42);
    await expect(
      inMissionSpan(missionId, "replan", async () => {
        throw new Error("planner down");
      }),
    ).rejects.toThrow("planner down");
    for (const name of ["plan", "replan"]) {
      const s = only(name);
      expect(s.spanContext().traceId).toBe(ids.traceId);
      expect(parentOf(s)).toBe(ids.spanId);
      expect(s.attributes["squad.mission.id"]).toBe(missionId);
    }
    expect(only("replan").status).toEqual({ code: SpanStatusCode.ERROR, message: "planner down" });
  });
});

describe("model calls", () => {
  it("are GenAI chat spans with the model and the tokens, children of the active span", async () => {
    expect(tracingEnabled()).toBe(true);
    const openai = await startFakeOpenAI(sequence(textReply("done", { input: 21, output: 5 })));
    try {
      const model = createChatModel("openai:gpt-4.1-mini", { env: openai.env });
      await tracer().startActiveSpan("planning", async (parent) => {
        await model.invoke("plan it");
        parent.end();
      });
    } finally {
      await openai.close();
    }
    const call = only("chat gpt-4.1-mini");
    expect(call.kind).toBe(SpanKind.CLIENT);
    expect(parentOf(call)).toBe(idOf(only("planning")));
    expect(call.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.system": "openai",
      "gen_ai.request.model": "gpt-4.1-mini",
      "gen_ai.usage.input_tokens": 21,
      "gen_ai.usage.output_tokens": 5,
    });
    expect(call.status.code).not.toBe(SpanStatusCode.ERROR);
  });
});

describe("agent tool calls", () => {
  it("are execute_tool spans; a failed command is an error, with its shell span inside", async () => {
    const tools = createAgentTools({
      allowed: ["run_shell", "read_file"],
      workspace,
      shellTimeoutMs: 10_000,
      onStep: () => undefined,
    });
    const run = tools.find((t) => t.name === "run_shell")!;
    const read = tools.find((t) => t.name === "read_file")!;
    await tracer().startActiveSpan("attempt", async (parent) => {
      await run.invoke({ command: "exit 3" });
      await read.invoke({ path: "missing.txt" });
      parent.end();
    });
    const attempt = only("attempt");
    const shellTool = only("execute_tool run_shell");
    expect(parentOf(shellTool)).toBe(idOf(attempt));
    expect(shellTool.attributes).toMatchObject({
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": "run_shell",
    });
    expect(shellTool.status.code).toBe(SpanStatusCode.ERROR);
    const shell = spans().find((s) => s.name === "shell" && parentOf(s) === idOf(shellTool));
    expect(shell?.attributes["process.exit.code"]).toBe(3);
    const readTool = only("execute_tool read_file");
    expect(parentOf(readTool)).toBe(idOf(attempt));
    expect(readTool.status.code).toBe(SpanStatusCode.ERROR);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
