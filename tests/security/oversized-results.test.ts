/**
 * Oversized results, run as the finding was: a mission's `run` steps make a
 * result larger than the NATS server's max_payload (here a real
 * nats-server with `max_payload: 256KB`, smaller than the 1 MiB default
 * the launcher's local server has). Before, such a result could never be
 * published: the attempt was redelivered until its deliveries ran out and
 * the mission ended only by its timeout. Now the result is cut to fit and
 * published, the task runs once, and the mission ends on its own.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SquadEvent } from "../../src/schema/index.ts";
import { runSwarm } from "../helpers/swarm-process.ts";
import {
  briefText,
  countByTask,
  ofType,
  plan,
  startSwarm,
  type Swarm,
} from "../orchestrator/e2e-harness.ts";

const MAX_PAYLOAD = 256 * 1024;

let swarm: Swarm;

beforeAll(async () => {
  swarm = await startSwarm({}, { configText: `max_payload: ${MAX_PAYLOAD}\n` });
  const orch = swarm.spawnOrchestrator();
  const worker = swarm.spawnWorker("builder");
  await swarm.ready(orch, "orchestrator");
  await swarm.ready(worker, "worker");
});
afterAll(async () => {
  await swarm?.stop();
});

async function runMission(title: string, run: string[]) {
  const id = await swarm.submit(
    briefText({ title, plan: plan([{ id: "big", agent: "builder", run, verify: [] }]) }),
  );
  const final = await swarm.waitFinal(id);
  const events = await swarm.events(id);
  return { final, events };
}

function bytes(e: SquadEvent): number {
  return Buffer.byteLength(JSON.stringify(e), "utf8");
}

describe("results larger than the server's max_payload", () => {
  it("the server really refuses more than 256 KiB", () => {
    expect(swarm.nc.info?.max_payload).toBe(MAX_PAYLOAD);
  });

  it.each([
    ["prints 700 KB", ["head -c 716800 /dev/zero | tr '\\0' a"]],
    ["prints 20 MB", ["head -c 20971520 /dev/zero | tr '\\0' a"]],
  ])("a run step that %s: published, once, and the mission completes", async (what, run) => {
    const { final, events } = await runMission(what, run);
    expect(final.type).toBe("mission_completed");
    expect(countByTask(events, "task_started")).toEqual({ big: 1 });
    const [done] = ofType(events, "task_completed");
    expect(done?.payload.result.steps[0]?.output).toMatch(/truncated \d+ bytes/);
    for (const e of events) expect(bytes(e)).toBeLessThan(MAX_PAYLOAD);
  });

  it("40 steps whose commands and outputs add up past the limit: cut, published once", async () => {
    // Each command is ~4 KB (a long comment) and prints 5 KB: the brief and the task_assigned
    // fit (~165 KB), the result (~330 KB: commands and 4 KiB of output per step) does not, uncut.
    const run = Array.from(
      { length: 40 },
      (_, i) => `head -c 5000 /dev/zero | tr '\\0' ${"abcdefghij"[i % 10]} # ${"x".repeat(4000)}`,
    );
    const { final, events } = await runMission("many big steps", run);
    expect(final.type).toBe("mission_completed");
    expect(countByTask(events, "task_started")).toEqual({ big: 1 });
    const [done] = ofType(events, "task_completed");
    expect(done?.payload.result.summary).toMatch(/\[result cut to fit the NATS payload limit/);
    expect(bytes(done!)).toBeLessThan(MAX_PAYLOAD);
    // Every step still went out whole in its own progress event.
    expect(ofType(events, "task_progress")).toHaveLength(40);
  });

  it("a brief the server can not carry is refused at submit with exit 2, naming the limit", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "squad-bigbrief-"));
    try {
      const file = path.join(dir, "big.md");
      const run = [`true # ${"x".repeat(300 * 1024)}`];
      await writeFile(
        file,
        briefText({ title: "too big", plan: plan([{ id: "t", agent: "builder", run }]) }),
      );
      const r = await runSwarm(["submit", file], swarm.env());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/accepts at most 262144 bytes \(its max_payload\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
