/**
 * The health endpoints container healthchecks poll: a real worker replica
 * and a real orchestrator, each with SWARM_HEALTH_PORT, answer 200 while
 * connected, 503 while their NATS server is down (saying so), 200 again once
 * it is back, and nothing once stopped.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

let server: NatsServerHandle;
let workspace: string;

beforeAll(async () => {
  server = await startNatsServer();
  workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-health-"));
}, 60_000);
afterAll(async () => {
  await killAllSwarms();
  await server.stop();
  await rm(workspace, { recursive: true, force: true });
});

interface Answer {
  code: number;
  body: Record<string, unknown>;
}

async function ask(url: string): Promise<Answer | null> {
  try {
    const res = await fetch(url);
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return null; // not listening (yet, or any more)
  }
}

/** Asks until the answer satisfies `want` (each ask is a real request to the process). */
async function until(url: string, want: (a: Answer | null) => boolean): Promise<Answer | null> {
  for (;;) {
    const a = await ask(url);
    if (want(a)) return a;
    await sleep(200);
  }
}

describe.each([
  { role: "worker", args: ["worker", "--agent", "builder"], extra: { agent: "builder" } },
  { role: "orchestrator", args: ["orchestrator"], extra: {} },
])("the $role's /healthz", ({ role, args, extra }) => {
  it("is 200 while connected, 503 while NATS is down, 200 again after, gone when stopped", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/healthz`;
    const p = spawnSwarm(
      args,
      swarmEnv(server.url, workspace, { SWARM_HEALTH_PORT: String(port), SWARM_SANDBOX: "none" }),
    );
    const up = await until(url, (a) => a?.code === 200);
    expect(up!.body).toMatchObject({
      status: "ok",
      role,
      nats: "connected",
      stopping: false,
      ...extra,
    });

    await server.kill();
    const down = await until(url, (a) => a?.code === 503);
    expect(down!.body).toMatchObject({
      status: "unavailable",
      role,
      nats: "reconnecting",
      reason: "NATS connection reconnecting",
    });

    await server.restart();
    await until(url, (a) => a?.code === 200);

    p.kill("SIGTERM");
    expect((await p.exited).code).toBe(0);
    expect(await ask(url)).toBeNull();
  }, 120_000);
});

describe("SWARM_HEALTH_PORT", () => {
  it("that is not a port is bad input (exit 2)", async () => {
    const p = spawnSwarm(
      ["worker", "--agent", "builder"],
      swarmEnv(server.url, workspace, { SWARM_HEALTH_PORT: "health", SWARM_SANDBOX: "none" }),
    );
    const { code } = await p.exited;
    expect(code).toBe(2);
    expect(p.stderr()).toMatch(/invalid SWARM_HEALTH_PORT/);
  }, 60_000);
});
