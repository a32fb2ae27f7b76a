/**
 * End to end: `swarm deploy` of an explicit-plan brief with OTEL_* set
 * exports its spans over OTLP/HTTP (JSON) to a receiver in this test on
 * 127.0.0.1, and one task can be followed across processes: the
 * orchestrator's publish of its task_assigned, the worker replica's attempt
 * span (the publish span's child, through the message's traceparent), the
 * attempt's shell commands and its reports (events of the attempt), all in the mission's
 * trace. With http/protobuf the same exporter sends protobuf.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missionTraceIds } from "../../src/telemetry/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
  events?: Array<{ name: string }>;
  status?: { code?: number };
}
interface ExportRequest {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: OtlpValue }> };
    scopeSpans: Array<{ spans: OtlpSpan[] }>;
  }>;
}
/** One received span with the service that sent it. */
interface Received extends OtlpSpan {
  service: string;
  attrs: Record<string, string | number | boolean | undefined>;
}

/** OTLP/JSON ids are hex; accept base64 too (older encoders). */
const hex = (id: string | undefined) =>
  !id ? "" : /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex");
const plain = (v: OtlpValue) =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue);

let receiver: http.Server;
let endpoint: string;
const spans: Received[] = [];
const bodies: Array<{ contentType: string; bytes: number }> = [];
let nats: NatsServerHandle;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-otlp-"));
  await chmod(dir, 0o711);
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const contentType = req.headers["content-type"] ?? "";
      bodies.push({ contentType, bytes: body.length });
      if (req.url === "/v1/traces" && contentType.startsWith("application/json")) {
        const r = JSON.parse(body.toString("utf8")) as ExportRequest;
        for (const rs of r.resourceSpans) {
          const service = String(
            plain(rs.resource.attributes.find((a) => a.key === "service.name")!.value),
          );
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              spans.push({
                ...s,
                traceId: hex(s.traceId),
                spanId: hex(s.spanId),
                parentSpanId: hex(s.parentSpanId),
                service,
                attrs: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, plain(a.value)])),
              });
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  await killAllSwarms();
  await nats?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
});

const BRIEF = `---
title: Traced
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: hello
          agent: builder
          title: Say hello
          run: ["echo hello > hello.txt"]
          verify: ["test -s hello.txt"]
---
One task, no model, traced.
`;

describe("OTLP/HTTP export from a real swarm", () => {
  it("follows one task from the orchestrator's dispatch to the worker's attempt and its commands", async () => {
    const brief = path.join(dir, "brief.md");
    await writeFile(brief, BRIEF);
    const r = await runSwarm(
      ["deploy", brief, "--replicas", "1", "--json"],
      swarmEnv(nats.url, path.join(dir, "ws"), {
        SWARM_SANDBOX: "none",
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      }),
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim()) as { mission_id: string; status: string };
    expect(summary.status).toBe("completed");
    const ids = missionTraceIds(summary.mission_id);

    // Every process flushed its spans before it ended: they are all here now.
    const inMission = spans.filter((s) => s.traceId === ids.traceId);
    const one = (name: string, service: RegExp) => {
      const found = inMission.filter((s) => s.name === name && service.test(s.service));
      expect(found.map((s) => `${s.service} ${s.name}`)).toHaveLength(1);
      return found[0]!;
    };
    const dispatch = one("publish task_assigned", /^squad-orchestrator$/);
    expect(dispatch.parentSpanId).toBe(ids.spanId);
    expect(dispatch.attrs).toMatchObject({
      "messaging.destination.name": "squad.tasks.builder",
      "squad.mission.id": summary.mission_id,
      "squad.task.id": "hello",
    });

    const attempt = one("task hello attempt 1", /^squad-worker-builder/);
    expect(attempt.parentSpanId).toBe(dispatch.spanId);
    expect(attempt.attrs).toMatchObject({
      "squad.task.outcome": "succeeded",
      "squad.agent": "builder",
    });

    const commands = inMission.filter(
      (s) => s.name === "shell" && s.parentSpanId === attempt.spanId,
    );
    expect(commands.map((s) => s.attrs["process.command_line"]).sort()).toEqual([
      "echo hello > hello.txt",
      "test -s hello.txt",
    ]);
    expect(commands.every((s) => s.attrs["process.exit.code"] === 0)).toBe(true);
    // Its reports are events of the attempt span.
    const reports = attempt.events?.map((e) => e.name) ?? [];
    expect(reports[0]).toBe("publish task_started");
    expect(reports.at(-1)).toBe("publish task_completed");
    expect(reports.slice(1, -1).every((n) => n === "publish task_progress")).toBe(true);

    // The orchestrator's other events are in the same trace, under the mission's root.
    expect(one("publish mission_completed", /^squad-orchestrator$/).parentSpanId).toBe(ids.spanId);
    // The root itself: the mission span, with the ids its id derives, closed with its status.
    const root = one(`mission ${summary.mission_id}`, /^squad-orchestrator$/);
    expect(root.spanId).toBe(ids.spanId);
    expect(root.attrs["squad.mission.status"]).toBe("completed");
  }, 180_000);

  it("sends protobuf with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", async () => {
    const brief = path.join(dir, "brief.md");
    await writeFile(brief, BRIEF);
    const before = bodies.length;
    const r = await runSwarm(
      ["submit", brief],
      swarmEnv(nats.url, path.join(dir, "ws"), {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      }),
    );
    expect(r.code, r.stderr).toBe(0);
    const sent = bodies.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((b) => b.contentType === "application/x-protobuf" && b.bytes > 0)).toBe(true);
  }, 60_000);
});
