/**
 * The mission view end to end on a real nats-server: the orchestrator keeps
 * it as it runs a mission, `swarm status` reads it (not SQUAD_EVENTS), and a
 * restarted orchestrator replays only from after what the view holds.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { StatusReport } from "../../src/cli/status-report.ts";
import { STREAMS } from "../../src/schema/index.ts";
import { waitForMissionSummary } from "../helpers/mission-view.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { killAllSwarms, runSwarm, spawnSwarm } from "../helpers/swarm-process.ts";

const bus = useSwarmBus("status-view");

const BRIEF = `---
title: Two quick tasks
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - { id: a, agent: builder, title: A, run: ["true"] }
        - { id: b, agent: builder, title: B, run: ["true"] }
---
# Two quick tasks
`;

describe("swarm status reads the orchestrator's mission view", () => {
  it("lists a mission the orchestrator ran, from the view; a restart replays none of its events", async () => {
    const orchestrator = spawnSwarm(["orchestrator"], bus.env);
    const worker = spawnSwarm(["worker", "--agent", "builder"], bus.env);
    await orchestrator.waitFor(/orchestrator ready/);
    await worker.waitFor(/worker replica online/);
    // A first start on an empty server builds the view from the (empty) stream.
    expect(orchestrator.stderr()).toMatch(/no mission view yet/);

    const briefPath = path.join(bus.workspace, "quick.md");
    await writeFile(briefPath, BRIEF);
    const submitted = await runSwarm(["submit", briefPath, "--wait"], bus.env);
    expect(submitted.code, submitted.stderr).toBe(0);
    const missionId = /m-[A-Za-z0-9_-]+/.exec(submitted.stdout)![0];
    await waitForMissionSummary(bus.nc, missionId, (s) => s.state === "completed");

    const r = await runSwarm(["status", "--json", "--missions", "5"], bus.env);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.mission_view).toMatchObject({
      source: "view",
      state: "ok",
      finished_not_listed: 0,
    });
    expect(report.missions).toEqual([
      expect.objectContaining({
        mission_id: missionId,
        title: "Two quick tasks",
        state: "completed",
        submitted_by: "cli",
        tasks: { total: 2, succeeded: 2, failed: 0, running: 0 },
        tokens: { "run-only": { input_tokens: 0, output_tokens: 0 } },
      }),
    ]);
    expect(report.missions[0]!.ended_at).not.toBeNull();

    // Stopped, the orchestrator writes the watermark; the next start reads from after it.
    orchestrator.kill("SIGTERM");
    await orchestrator.exited;
    const lastSeq = (await (await jetstreamManager(bus.nc)).streams.info(STREAMS.events)).state
      .last_seq;
    const again = spawnSwarm(["orchestrator"], bus.env);
    await again.waitFor(/orchestrator ready/);
    const read = again
      .stderr()
      .split("\n")
      .filter((l) => l.includes("mission view read"))
      .map((l) => JSON.parse(l) as { from_seq: number; unfinished: number });
    expect(read).toEqual([expect.objectContaining({ from_seq: lastSeq + 1, unfinished: 0 })]);
    await killAllSwarms();
  });
});
