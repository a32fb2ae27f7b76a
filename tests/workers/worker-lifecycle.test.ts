/**
 * Stopping workers: SIGTERM drains (no task lost), and `--replicas N`
 * supervises N processes that all stop cleanly. Real processes, real NATS.
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { unusedPort } from "../helpers/fake-ollama.ts";
import { killAllSwarms, runSwarm, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import {
  assign,
  isAlive,
  makeTask,
  newMission,
  spawnWorker,
  startBus,
  type Bus,
} from "./worker-harness.ts";

let bus: Bus;
let deadModel: string;

beforeAll(async () => {
  bus = await startBus();
  deadModel = `127.0.0.1:${await unusedPort()}`;
});

afterAll(async () => {
  await killAllSwarms();
  await bus?.close();
});

const ws = (mission: string, ...rel: string[]) => path.join(bus.workspace, mission, ...rel);

/** The first of `n` consecutive ports nothing listens on. */
async function consecutiveFreePorts(n: number): Promise<number> {
  for (;;) {
    const first = await unusedPort();
    const rest = await Promise.all(
      Array.from({ length: n - 1 }, (_, i) => portFree(first + i + 1)),
    );
    if (first + n - 1 <= 65535 && rest.every(Boolean)) return first;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

describe("worker shutdown", () => {
  it("on SIGTERM finishes what it can, hands back the rest, and loses no task", async () => {
    const agent = "tester";
    const mission = newMission("drain");
    const env = {
      OLLAMA_HOST: deadModel,
      // Long enough for the quick task to finish on a loaded machine (a sandboxed command
      // costs its set-up too); the slow one (60 s) still outlasts it and is handed back.
      SWARM_DRAIN_TIMEOUT_MS: "15000",
      SWARM_HEARTBEAT_MS: "200",
      SWARM_ACK_WAIT_MS: "3000",
    };
    const a = await spawnWorker(bus, agent, env, ["--concurrency", "2"]);

    // A slow task that only finishes on its second run, and a quick one.
    await assign(
      bus,
      mission,
      makeTask({
        id: "slow",
        agent,
        run: [
          "if [ -f slow.started ]; then echo second run; else touch slow.started; sleep 60; fi",
        ],
      }),
    );
    await bus.events.waitFor(
      "task_started",
      (e) => e.task_id === "slow" && e.mission_id === mission,
    );
    await assign(
      bus,
      mission,
      makeTask({ id: "quick", agent, run: ["sleep 0.5", "echo quick > quick.txt"] }),
    );
    await bus.events.waitFor(
      "task_started",
      (e) => e.task_id === "quick" && e.mission_id === mission,
    );
    a.kill("SIGTERM");
    await a.waitFor(/"msg":"draining"/);
    // Queued after the stop: they wait for another replica.
    for (const id of ["q1", "q2", "q3"]) {
      await assign(bus, mission, makeTask({ id, agent, run: [`echo ${id} > ${id}.txt`] }));
    }

    expect(await a.exited).toEqual({ code: 0, signal: null });
    // The quick task finished inside the drain window; the slow one was handed back, not failed.
    const quick = await bus.events.result(mission, "quick");
    expect(quick.type).toBe("task_completed");
    expect(quick.payload.result.worker).toBe(a.worker);
    expect(bus.events.forTask("task_failed", mission, "slow")).toHaveLength(0);
    expect(bus.events.forTask("task_completed", mission, "slow")).toHaveLength(0);
    expect(bus.events.forTask("task_started", mission, "q1")).toHaveLength(0);
    const offline = await bus.events.waitFor("agent_offline", (e) => e.source === a.worker);
    expect(offline.payload.reason).toBe("received SIGTERM");
    const lastBeat = bus.events.of("agent_heartbeat", (e) => e.source === a.worker).at(-1);
    expect(bus.events.all.indexOf(lastBeat!)).toBeLessThan(bus.events.all.indexOf(offline));

    const b = await spawnWorker(bus, agent, env);
    for (const id of ["slow", "q1", "q2", "q3"]) {
      const done = await bus.events.result(mission, id);
      expect(done.type, id).toBe("task_completed");
      expect(done.payload.result.worker).toBe(b.worker);
    }
    const slow = bus.events.forTask("task_completed", mission, "slow")[0]!;
    expect(slow.payload.result.steps[0]?.output).toBe("second run\n");
    for (const id of ["quick", "slow", "q1", "q2", "q3"]) {
      expect(bus.events.forTask("task_completed", mission, id), id).toHaveLength(1);
    }
    expect(await readFile(ws(mission, "q3.txt"), "utf8")).toBe("q3\n");
    b.kill("SIGTERM");
    expect((await b.exited).code).toBe(0);
  }, 180_000);

  it("--replicas 2 runs two supervised processes that share the work and stop together", async () => {
    const agent = "reviewer";
    const mission = newMission("replicas");
    const healthPort = await consecutiveFreePorts(2);
    const parent = spawnSwarm(
      ["worker", "--agent", agent, "--replicas", "2"],
      swarmEnv(bus.server.url, bus.workspace, {
        OLLAMA_HOST: deadModel,
        SWARM_HEALTH_PORT: String(healthPort),
      }),
    );
    await bus.events.until(
      () => bus.events.of("agent_online", (e) => e.payload.agent === agent).length >= 2,
      30_000,
      "two reviewer replicas online",
    );
    const online = bus.events.of("agent_online", (e) => e.payload.agent === agent);
    const pids = online.map((e) => e.payload.pid);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(parent.pid);
    // Each replica serves /healthz and /metrics on a port of its own: P and P + 1.
    for (const port of [healthPort, healthPort + 1]) {
      await vi.waitFor(
        async () => expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200),
        { timeout: 10_000 },
      );
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^process_cpu_user_seconds_total/m);
    }

    const ids = Array.from({ length: 8 }, (_, i) => `r${i}`);
    for (const id of ids) {
      await assign(bus, mission, makeTask({ id, agent, run: [`sleep 0.2; echo ${id}`] }));
    }
    for (const id of ids)
      expect((await bus.events.result(mission, id)).type).toBe("task_completed");
    const workers = new Set(
      bus.events
        .of("task_completed", (e) => e.mission_id === mission)
        .map((e) => e.payload.result.worker),
    );
    expect(workers).toEqual(new Set(online.map((e) => e.source)));

    parent.kill("SIGTERM");
    expect(await parent.exited).toEqual({ code: 0, signal: null });
    for (const e of online) {
      await bus.events.waitFor("agent_offline", (o) => o.source === e.source, 5000);
    }
    await vi.waitFor(() => expect(pids.filter(isAlive)).toEqual([]), { timeout: 5000 });
  });

  it.each([
    ["a model spec", { SWARM_WORKER_MODEL: "qwen-without-provider" }, /invalid model spec/],
    ["a tuning knob", { SWARM_ACK_WAIT_MS: "soon" }, /invalid worker setting: SWARM_ACK_WAIT_MS/],
    [
      "health ports past 65535",
      { SWARM_HEALTH_PORT: "65535" },
      /replica ports 65535-65536 go past 65535/,
    ],
  ])("refuses a bad setting (%s) with exit 2 before connecting", async (_label, extra, message) => {
    const r = await runSwarm(
      ["worker", "--agent", "builder", "--replicas", "2"],
      swarmEnv("nats://127.0.0.1:1", bus.workspace, extra),
      { timeoutMs: 20_000 },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
