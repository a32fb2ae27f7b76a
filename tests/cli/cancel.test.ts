import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { replayEvents } from "../../src/bus/index.ts";
import type { SquadEvent } from "../../src/schema/index.ts";
import { freePort } from "../helpers/nats-server.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { killAllSwarms, runSwarm, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const bus = useSwarmBus("cancel");

const SLOW_BRIEF = `---
title: Slow mission
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: slow
          agent: builder
          title: Wait a long time
          run: ["sleep 120"]
---
# Slow mission
`;

async function recorded(missionId: string): Promise<SquadEvent[]> {
  const out: SquadEvent[] = [];
  for await (const { event } of replayEvents(bus.nc, { missionId })) out.push(event);
  return out;
}

describe("swarm cancel", () => {
  it("cancels a running mission: the request, then the orchestrator's mission_cancelled", async () => {
    const orchestrator = spawnSwarm(["orchestrator"], bus.env);
    const worker = spawnSwarm(["worker", "--agent", "builder"], bus.env);
    await orchestrator.waitFor(/orchestrator ready/);
    await worker.waitFor(/worker replica online/);

    const briefPath = path.join(bus.workspace, "slow.md");
    await writeFile(briefPath, SLOW_BRIEF);
    const submitted = await runSwarm(["submit", briefPath], bus.env);
    expect(submitted.code).toBe(0);
    const missionId = submitted.stdout.trim();
    const watcher = spawnSwarm(["watch", "--json", "--mission", missionId], bus.env);
    await watcher.waitFor(/"type":"task_started"/);

    const r = await runSwarm(
      ["cancel", missionId, "--reason", "the test says stop", "--wait"],
      bus.env,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`${missionId} mission_cancelled +cancel requested by cli: the test says stop`),
    );
    expect(r.stdout).toMatch(
      new RegExp(`${missionId} mission_cancelled +cancelled: the test says stop`),
    );

    // The watcher of a mission that did not complete exits 1.
    expect((await watcher.exited).code).toBe(1);
    const events = await recorded(missionId);
    const cancels = events.filter((e) => e.type === "mission_cancelled");
    expect(cancels).toEqual([
      expect.objectContaining({
        source: "cli",
        payload: { reason: "the test says stop", requested_by: "cli" },
      }),
      expect.objectContaining({ source: "orchestrator" }),
    ]);
    expect(events.some((e) => e.type === "mission_completed")).toBe(false);

    // Again: nothing left to cancel, nothing sent.
    const again = await runSwarm(["cancel", missionId, "--json"], bus.env);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/has already ended \(cancelled\); nothing sent/);
    expect((await recorded(missionId)).filter((e) => e.type === "mission_cancelled")).toHaveLength(
      2,
    );

    await killAllSwarms();
  });

  it("refuses a malformed or unknown mission id (exit 2) and says when NATS is down (exit 3)", async () => {
    const bad = await runSwarm(["cancel", "m.1/x"], bus.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid mission id "m\.1\/x"/);

    const unknown = await runSwarm(["cancel", "m-never-submitted"], bus.env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no mission m-never-submitted on this server/);
    expect((await recorded("m-never-submitted")).length).toBe(0);

    const down = await runSwarm(
      ["cancel", "m-whatever"],
      swarmEnv(`nats://127.0.0.1:${await freePort()}`, bus.workspace),
    );
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/NATS is not reachable/);
  });
});
