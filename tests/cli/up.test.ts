/** `swarm up` as a real process against a test nats-server. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, runSwarm, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const dirs: string[] = [];
let nats: NatsServerHandle;

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  await killAllSwarms();
});
afterAll(async () => {
  await killAllSwarms();
  await nats?.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), "squad-up-"));
  dirs.push(d);
  return d;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("swarm up", () => {
  it("runs the orchestrator and N replicas until SIGTERM; a submitted mission runs on them", async () => {
    const ws = await tempDir();
    const env = swarmEnv(nats.url, ws);
    const up = spawnSwarm(["up", "--agents", "builder", "--replicas", "2"], env);
    await up.waitFor(/running: orchestrator and 1×2 replicas/, 30_000);
    await up.waitFor(
      /agent_online[^\n]*builder\/\S+ online[\s\S]*agent_online[^\n]*builder\/\S+ online/,
      30_000,
    );
    const out = up.stdout();
    expect(out).toContain(`nats ${nats.url} (already running)`);
    const pids = [...out.matchAll(/(orchestrator|builder-\d) started \(pid (\d+)\)/g)].map((m) => ({
      name: m[1]!,
      pid: Number(m[2]),
    }));
    expect(pids.map((p) => p.name).sort()).toEqual(["builder-1", "builder-2", "orchestrator"]);

    const brief = path.join(ws, "brief.md");
    await writeFile(
      brief,
      `---
title: On a running swarm
plan:
  waves:
    - wave: 1
      tasks:
        - { id: one, agent: builder, title: One, run: ["echo 1 > one.txt"] }
        - { id: two, agent: builder, title: Two, run: ["echo 2 > two.txt"], depends_on: [] }
---
Two tasks for the two replicas.
`,
    );
    const submitted = await runSwarm(["submit", brief, "--wait"], env, { timeoutMs: 60_000 });
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
    const missionId = submitted.stdout.split("\n")[0]!;
    // The tasks' work is the mission's branch: read it as a user would, from an export.
    const exported = path.join(ws, "exported");
    const exp = await runSwarm(["export", missionId, exported], env);
    expect(exp.code, exp.stderr).toBe(0);
    expect(await readFile(path.join(exported, "one.txt"), "utf8")).toBe("1\n");
    expect(await readFile(path.join(exported, "two.txt"), "utf8")).toBe("2\n");
    expect(up.stdout()).not.toMatch(/exited|restarting/); // nothing crashed meanwhile

    up.kill("SIGTERM");
    const { code } = await up.exited;
    expect(code, up.stderr()).toBe(0);
    expect(up.stdout()).toMatch(/builder\/\S+ offline/);
    expect(up.stdout()).toMatch(/stopped\n$/);
    expect(pids.filter((p) => alive(p.pid))).toEqual([]);
  });

  it("its children stop by themselves when the launcher is SIGKILLed", async () => {
    const ws = await tempDir();
    const up = spawnSwarm(["up", "--agents", "builder", "--replicas", "2"], swarmEnv(nats.url, ws));
    await up.waitFor(/agent_online[^\n]*builder[\s\S]*agent_online[^\n]*builder/, 30_000);
    const pids = [...up.stdout().matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    up.kill("SIGKILL");
    await up.exited;
    // Re-parented, each notices within a second or so and drains; give a loaded machine time.
    const deadline = Date.now() + 30_000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(200);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("exits 2 for an agent that is not in the roster", async () => {
    const ws = await tempDir();
    const r = await runSwarm(["up", "--agents", "builder,wizard"], swarmEnv(nats.url, ws));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--agents: "wizard" not in the roster');
  });
});
