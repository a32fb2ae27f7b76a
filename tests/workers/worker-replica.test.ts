/**
 * The delivery rules of one replica, in-process (to set lease, max_deliver
 * and drain times per test and to hold claims by hand): the KV claim
 * `<mission>.<task>.<attempt>`, the last-delivery cases, mission endings,
 * and the agent's model-call budget. Real nats-server, real ChatOllama
 * against the fake Ollama server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import pino from "pino";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  CLAIMS_BUCKET,
  claimKey,
  connectBus,
  openLeaseStore,
  type LeaseStore,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { readWorkerTuning } from "../../src/cli/commands/worker.ts";
import { BadInputError } from "../../src/errors.ts";
import { silentLogger } from "../../src/log.ts";
import { makeEvent } from "../../src/schema/index.ts";
import type { RosterAgent } from "../../src/workers/roster.ts";
import { redactSecrets, secretValues } from "../../src/workers/secret-redaction.ts";
import { missionEndReason } from "../../src/workers/mission-ends.ts";
import {
  startWorkerReplica,
  type WorkerReplica,
  type WorkerReplicaOptions,
} from "../../src/workers/worker-replica.ts";
import {
  lastMessageText,
  sequence,
  startFakeOllama,
  textReply,
  toolCallReply,
  type FakeModelServer,
} from "../helpers/fake-ollama.ts";
import { assign, makeTask, newMission, startBus, type Bus } from "./worker-harness.ts";

let bus: Bus;
let leases: LeaseStore;
const replicas: WorkerReplica[] = [];
const connections: NatsConnection[] = [];

beforeAll(async () => {
  bus = await startBus();
  leases = await openLeaseStore(bus.nc, CLAIMS_BUCKET);
});

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop("test over")));
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await bus?.close();
});

function agentNamed(name: string, tools: RosterAgent["tools"] = ["run_shell"]): RosterAgent {
  return { name, description: "test agent", persona: "You are a test agent.", tools };
}

/** A replica on its own connection, as a separate process would have. */
async function replica(
  agent: RosterAgent,
  over: Partial<WorkerReplicaOptions> = {},
): Promise<WorkerReplica> {
  const nc = await connectBus({ servers: bus.server.url, name: `replica-${agent.name}` });
  connections.push(nc);
  const r = await startWorkerReplica({
    nc,
    agent,
    instance: `test-${agent.name}-${replicas.length}`,
    concurrency: 1,
    workspaceRoot: bus.workspace,
    defaultModel: "ollama:qwen-test",
    version: "test",
    log: silentLogger,
    heartbeatMs: 60_000,
    ...over,
  });
  replicas.push(r);
  return r;
}

async function consumerIdle(agent: string): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  await vi.waitFor(
    async () => {
      const ci = await jsm.consumers.info("SQUAD_TASKS", `worker-${agent}`);
      expect([ci.num_pending, ci.num_ack_pending]).toEqual([0, 0]);
    },
    { timeout: 10_000, interval: 100 },
  );
}

describe("claims", () => {
  it("acks and drops an attempt whose claim is already done", async () => {
    const agent = agentNamed("claimdone");
    const mission = newMission("done");
    const key = claimKey(agent.name, mission, "t1", 1);
    expect(await leases.acquire(key, "someone-else", 60_000)).toMatchObject({ ok: true });
    await leases.complete(key, "someone-else");
    await replica(agent);
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name, run: ["touch ran"] }));
    await consumerIdle(agent.name);
    expect(bus.events.forTask("task_started", mission, "t1")).toHaveLength(0);
    // The next attempt is a different key: it runs.
    await assign(
      bus,
      mission,
      makeTask({ id: "t1", agent: agent.name, attempt: 2, run: ["touch ran"] }),
    );
    expect((await bus.events.result(mission, "t1")).payload.result.attempt).toBe(2);
  });

  it("naks while a live replica holds the claim, and runs it once the lease lapses", async () => {
    const agent = agentNamed("claimheld");
    const mission = newMission("held");
    const key = claimKey(agent.name, mission, "t1", 1);
    // A replica that died holding the claim: its lease runs out in 1.5 s.
    expect(await leases.acquire(key, "dead-replica", 1500)).toMatchObject({ ok: true });
    const r = await replica(agent, { leaseMs: 3000 });
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name, run: ["echo ran"] }));
    const done = await bus.events.result(mission, "t1");
    expect(done.type).toBe("task_completed");
    const starts = bus.events.forTask("task_started", mission, "t1");
    expect(starts.map((s) => s.payload.delivery)).toEqual([2]);
    // The claim is marked done right after the result goes out.
    await vi.waitFor(async () =>
      expect(await leases.inspect(key)).toMatchObject({ done: true, owner: "test-claimheld-0" }),
    );
    await vi.waitFor(() => expect(r.inFlight()).toBe(0));
  });

  it("on the last delivery waits out a held claim instead of stranding the message", async () => {
    const agent = agentNamed("claimlast");
    const mission = newMission("last");
    const key = claimKey(agent.name, mission, "t1", 1);
    expect(await leases.acquire(key, "dead-replica", 1500)).toMatchObject({ ok: true });
    await replica(agent, { maxDeliver: 1, leaseMs: 3000 });
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name, run: ["echo ran"] }));
    const done = await bus.events.result(mission, "t1");
    expect(done.type).toBe("task_completed");
    expect(
      bus.events.forTask("task_started", mission, "t1").map((s) => s.payload.delivery),
    ).toEqual([1]);
    await consumerIdle(agent.name);
  });
});

describe("stopping and mission endings", () => {
  it("on the last delivery reports a drained task as failed and retryable instead of stranding it", async () => {
    const agent = agentNamed("drainlast");
    const mission = newMission("drainlast");
    const r = await replica(agent, { maxDeliver: 1, drainTimeoutMs: 200 });
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name, run: ["sleep 60"] }));
    await bus.events.waitFor("task_started", (e) => e.mission_id === mission);
    await r.stop("test stop");
    const done = await bus.events.result(mission, "t1");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result).toMatchObject({
      retryable: true,
      error: "the worker stopped (drain) before the task finished",
    });
    await consumerIdle(agent.name);
  });

  it("aborts an in-flight task when its mission completes", async () => {
    const agent = agentNamed("missionend");
    const mission = newMission("completed");
    await replica(agent);
    await assign(bus, mission, makeTask({ id: "dup", agent: agent.name, run: ["sleep 60"] }));
    await bus.events.waitFor("task_started", (e) => e.mission_id === mission);
    await bus.publisher.publish(
      makeEvent(
        "mission_completed",
        { mission_id: mission, source: "orchestrator" },
        {
          summary: "done",
          tasks: { total: 1, succeeded: 1, failed: 0 },
          duration_ms: 1,
          usage: { input_tokens: 0, output_tokens: 0 },
          report: null,
        },
      ),
    );
    const done = await bus.events.result(mission, "dup");
    expect(done.payload.result.error).toBe("mission already completed");
  });

  it("names the reason a mission ended (pure)", () => {
    const fields = { mission_id: "m1", source: "cli" };
    expect(missionEndReason(makeEvent("mission_cancelled", fields, { reason: "by hand" }))).toBe(
      "cancelled: by hand",
    );
    expect(
      missionEndReason(
        makeEvent("mission_failed", fields, { reason: "budget exceeded", failed_tasks: [] }),
      ),
    ).toBe("mission failed: budget exceeded");
    expect(
      missionEndReason(makeEvent("wave_started", fields, { wave: 1, task_ids: ["t1"] })),
    ).toBeNull();
  });
});

describe("logs", () => {
  it("logs a failed task at info, a succeeded one only in the replica's summary", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const agent = agentNamed("logs");
    const mission = newMission("logs");
    const r = await replica(agent, { log });
    await assign(bus, mission, makeTask({ id: "ok", agent: agent.name, run: [] }));
    await assign(bus, mission, makeTask({ id: "bad", agent: agent.name, run: ["exit 3"] }));
    expect((await bus.events.result(mission, "ok")).type).toBe("task_completed");
    expect((await bus.events.result(mission, "bad")).type).toBe("task_failed");
    await consumerIdle(agent.name);
    await r.stop("test over");
    const done = lines.filter((l) => l.msg === "task done");
    expect(done.map((l) => [l.task, l.status])).toEqual([["bad", "failed"]]);
    expect(lines.filter((l) => l.msg === "tasks done")).toEqual([
      expect.objectContaining({ completed: 1, failed: 1, in_flight: 0 }),
    ]);
  });
});

describe("the agent's model budget", () => {
  let ollama: FakeModelServer | undefined;
  afterEach(async () => {
    await ollama?.close();
    ollama = undefined;
  });

  it("nudges a model that only describes the work, then counts the work it does", async () => {
    const agent = agentNamed("nudged", ["run_shell", "write_file"]);
    const mission = newMission("nudge");
    ollama = await startFakeOllama(
      sequence(
        textReply("I would create done.txt with the word yes.", { input: 10, output: 5 }),
        (req) => {
          expect(lastMessageText(req)).toMatch(/You have not called any tool/);
          return toolCallReply(
            "write_file",
            { path: "done.txt", content: "yes" },
            { input: 20, output: 5 },
          );
        },
        textReply("Created done.txt.", { input: 30, output: 5 }),
      ),
    );
    await replica(agent, { env: { ...process.env, ...ollama.env } });
    await assign(
      bus,
      mission,
      makeTask({ id: "t1", agent: agent.name, verify: ["grep -qx yes done.txt"] }),
    );
    const done = await bus.events.result(mission, "t1");
    expect(done.type, done.payload.result.error).toBe("task_completed");
    expect(done.payload.result.usage).toEqual({
      model: "ollama:qwen-test",
      input_tokens: 60,
      output_tokens: 15,
    });
    expect(ollama.requests).toHaveLength(3);
  });

  it("fails a task whose model only talks, even after the reminder", async () => {
    const agent = agentNamed("talker");
    const mission = newMission("talk");
    ollama = await startFakeOllama(() => textReply("The task is simple; it is done."));
    await replica(agent, { env: { ...process.env, ...ollama.env } });
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name }));
    const done = await bus.events.result(mission, "t1");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result).toMatchObject({
      error: "the model called no tool, even when reminded, so nothing was done",
      summary: "The task is simple; it is done.",
      steps: [],
    });
    expect(ollama.requests).toHaveLength(2);
  });

  it("fails a task whose model keeps calling tools past the call budget", async () => {
    const agent = agentNamed("looping");
    const mission = newMission("loop");
    ollama = await startFakeOllama(() => toolCallReply("run_shell", { command: "echo again" }));
    await replica(agent, { env: { ...process.env, ...ollama.env }, maxModelCalls: 3 });
    await assign(bus, mission, makeTask({ id: "t1", agent: agent.name }));
    const done = await bus.events.result(mission, "t1");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toBe("the model used all 3 model calls without finishing");
    expect(done.payload.result.steps).toHaveLength(3);
    expect(ollama.requests).toHaveLength(3);
  });
});

describe("pure helpers", () => {
  it("finds the secrets of an environment and scrubs them from any value", () => {
    const env = {
      OPENAI_API_KEY: "sk-abcdef123456",
      NATS_URL: "nats://worker:s3cr3t-pass@nats:4222",
      GITHUB_TOKEN: "ghp_0123456789",
      PATH: "/usr/bin:/bin",
      SWARM_WORKSPACE: "/tmp/ws",
      SHORT_KEY: "abc",
    };
    const secrets = secretValues(env);
    expect(secrets.sort()).toEqual(["ghp_0123456789", "s3cr3t-pass", "sk-abcdef123456"]);
    const event = {
      a: "key sk-abcdef123456!",
      b: ["x", { c: "nats://worker:s3cr3t-pass@nats" }],
      n: 1,
    };
    expect(redactSecrets(event, secrets)).toEqual({
      a: "key [redacted]!",
      b: ["x", { c: "nats://worker:[redacted]@nats" }],
      n: 1,
    });
    expect(event.a).toBe("key sk-abcdef123456!");
    // Nothing secret: the very same object (a validated event stays validated).
    const clean = { a: "nothing here", b: ["x", { c: "y" }], n: 1 };
    expect(redactSecrets(clean, secrets)).toBe(clean);
    const partly = redactSecrets({ keep: clean.b, leak: "sk-abcdef123456" }, secrets);
    expect(partly.keep).toBe(clean.b);
  });

  it("reads the worker's tuning knobs and names a bad one", () => {
    expect(readWorkerTuning({ SWARM_ACK_WAIT_MS: "2000", SWARM_MAX_DELIVER: "3" })).toEqual({
      SWARM_ACK_WAIT_MS: 2000,
      SWARM_MAX_DELIVER: 3,
    });
    expect(() => readWorkerTuning({ SWARM_LEASE_MS: "soon" })).toThrow(BadInputError);
    expect(() => readWorkerTuning({ SWARM_ACK_WAIT_MS: "10" })).toThrow(/SWARM_ACK_WAIT_MS/);
  });
});
