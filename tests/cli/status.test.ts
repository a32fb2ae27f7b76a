import { jetstream } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { buildDlqRecord, ensureWorkerConsumer, publishDeadLetter } from "../../src/bus/index.ts";
import type { StatusReport } from "../../src/cli/status-report.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { buildMissionView } from "../helpers/mission-view.ts";
import { freePort } from "../helpers/nats-server.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { killAllSwarms, runSwarm, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const bus = useSwarmBus("status");

const minutesAgo = (n: number) => new Date(Date.now() - n * 60_000).toISOString();

function planned(missionId: string, title: string, taskIds: string[]) {
  return makeEvent(
    "mission_planned",
    { mission_id: missionId, source: "orchestrator", timestamp: minutesAgo(5) },
    {
      title,
      planner: null,
      plan: {
        waves: [
          { wave: 1, tasks: taskIds.map((id) => ({ id, agent: "builder", title: `do ${id}` })) },
        ],
      },
    },
  );
}

describe("swarm status", () => {
  it("says clearly that the mission view is missing, and lists no history instead", async () => {
    await bus.publisher.publish(planned("m-early", "Before any orchestrator", ["a"]));
    const r = await runSwarm(["status", "--json"], bus.env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.mission_view).toMatchObject({ source: "view", state: "missing" });
    expect(report.mission_view.detail).toMatch(/squad_mission_view does not exist/);
    expect(report.missions).toEqual([]);
    expect(r.stderr).toMatch(/warning: mission view missing/);
    const text = await runSwarm(["status"], bus.env);
    expect(text.stdout).toMatch(/mission view missing: .*squad_mission_view/);
    expect(text.stdout).toMatch(/--from-events` reads SQUAD_EVENTS instead/);
    // Asked for, the events are read: the old way, named as such.
    const replayed = await runSwarm(["status", "--json", "--from-events"], bus.env);
    const fromEvents = JSON.parse(replayed.stdout) as StatusReport;
    expect(fromEvents.mission_view.source).toBe("events");
    expect(fromEvents.missions.map((m) => m.mission_id)).toContain("m-early");
  });

  it("lists agents and replicas, per-agent backlog, in-flight and DLQ counts, and missions by state", async () => {
    // A real replica of builder: online, with its consumer.
    const worker = spawnSwarm(["worker", "--agent", "builder"], bus.env);
    await worker.waitFor(/worker replica online/);

    // tester: its consumer exists but no replica runs, so its tasks wait.
    await ensureWorkerConsumer(bus.nc, "tester");
    for (const id of ["t1", "t2", "t3"])
      await bus.publisher.publish(taskAssignedEvent("tester", id, { missionId: "m-backlog" }));
    // reviewer: no consumer was ever created; its tasks sit in SQUAD_TASKS.
    for (const id of ["r1", "r2"])
      await bus.publisher.publish(taskAssignedEvent("reviewer", id, { missionId: "m-backlog" }));
    // Replicas that went quiet, and one that said goodbye.
    await bus.publisher.publish(
      makeEvent(
        "agent_heartbeat",
        { mission_id: null, source: "tester/old1", timestamp: minutesAgo(10) },
        {
          agent: "tester",
          instance: "old1",
          in_flight: 1,
          completed: 4,
          failed: 1,
          uptime_s: 600,
          workspace_bytes: 3 * 1024 * 1024,
        },
      ),
    );
    await bus.publisher.publish(
      makeEvent(
        "agent_offline",
        { mission_id: null, source: "tester/gone1" },
        { agent: "tester", instance: "gone1", reason: "SIGTERM" },
      ),
    );
    await publishDeadLetter(
      jetstream(bus.nc),
      buildDlqRecord({
        reason: "invalid task_assigned event",
        agent: "tester",
        subject: "squad.tasks.tester",
        streamSeq: 77,
        deliveryCount: 1,
        data: new TextEncoder().encode("{}"),
      }),
    );

    // Missions in every stage.
    await bus.publisher.publish(planned("m-running", "Running one", ["a", "b", "c"]));
    await bus.publisher.publish(
      makeEvent(
        "wave_started",
        { mission_id: "m-running", source: "orchestrator" },
        { wave: 1, task_ids: ["a", "b", "c"] },
      ),
    );
    for (const [task, type] of [
      ["a", "task_started"],
      ["b", "task_started"],
    ] as const) {
      await bus.publisher.publish(
        makeEvent(
          type,
          { mission_id: "m-running", task_id: task, source: "builder/i1" },
          { attempt: 1, worker: "builder/i1" },
        ),
      );
    }
    await bus.publisher.publish(
      makeEvent(
        "task_completed",
        { mission_id: "m-running", task_id: "a", source: "builder/i1" },
        {
          result: {
            status: "succeeded",
            summary: "done",
            steps: [],
            verification: [],
            usage: { model: null, input_tokens: 0, output_tokens: 0 },
            attempt: 1,
            duration_ms: 5,
            worker: "builder/i1",
          },
        },
      ),
    );
    await bus.publisher.publish(planned("m-done", "Finished one", ["x"]));
    await bus.publisher.publish(
      makeEvent(
        "mission_completed",
        { mission_id: "m-done", source: "orchestrator", timestamp: minutesAgo(4) },
        {
          summary: "1 of 1",
          tasks: { total: 1, succeeded: 1, failed: 0 },
          duration_ms: 1000,
          usage: { input_tokens: 10, output_tokens: 5 },
          report: "/tmp/r.md",
        },
      ),
    );
    await bus.publisher.publish(planned("m-cancelling", "Being cancelled", ["y"]));
    await bus.publisher.publish(
      makeEvent(
        "mission_cancelled",
        { mission_id: "m-cancelling", source: "cli" },
        { reason: "no longer needed", requested_by: "cli" },
      ),
    );
    // Submitted while no orchestrator runs: still in SQUAD_MISSIONS.
    await bus.publisher.publish(
      makeEvent(
        "mission_submitted",
        { mission_id: "m-queued", source: "cli" },
        { brief: "---\ntitle: Waiting one\n---\n# Waiting\n", source_path: null },
      ),
    );

    // What the orchestrator keeps as the events arrive (none runs here: it would run the missions).
    await buildMissionView(bus.nc);

    const r = await runSwarm(["status", "--json"], bus.env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.mission_view).toMatchObject({ source: "view", state: "ok" });
    const agent = (name: string) => report.agents.find((a) => a.agent === name);

    expect(agent("builder")).toMatchObject({
      online: 1,
      stale: 0,
      backlog: 0,
      in_flight: 0,
      consumer: true,
      dlq: 0,
    });
    expect(agent("builder")!.waiting).toBeGreaterThanOrEqual(1);
    expect(agent("tester")).toMatchObject({
      online: 0,
      stale: 1,
      offline: 1,
      backlog: 3,
      in_flight: 0,
      consumer: true,
      dlq: 1,
    });
    expect(agent("reviewer")).toMatchObject({ backlog: 2, consumer: false, online: 0 });
    expect(report.consumers.map((c) => c.name).sort()).toEqual(["worker-builder", "worker-tester"]);
    expect(report.consumers.find((c) => c.agent === "tester")).toMatchObject({
      num_pending: 3,
      num_ack_pending: 0,
    });
    expect(report.instances.filter((i) => i.agent === "tester")).toEqual([
      expect.objectContaining({
        instance: "old1",
        state: "stale",
        in_flight: 1,
        completed: 4,
        workspace_bytes: 3 * 1024 * 1024,
      }),
      expect.objectContaining({ instance: "gone1", state: "offline", reason: "SIGTERM" }),
    ]);
    expect(report.instances.find((i) => i.agent === "builder")).toMatchObject({ state: "online" });

    const mission = (id: string) => report.missions.find((m) => m.mission_id === id);
    expect(mission("m-running")).toMatchObject({
      state: "running",
      title: "Running one",
      tasks: { total: 3, succeeded: 1, failed: 0, running: 1 },
      cancel_requested: false,
    });
    expect(mission("m-done")).toMatchObject({
      state: "completed",
      tasks: { total: 1, succeeded: 1, failed: 0, running: 0 },
      report: "/tmp/r.md",
    });
    expect(mission("m-cancelling")).toMatchObject({ state: "planned", cancel_requested: true });
    expect(mission("m-queued")).toMatchObject({ state: "submitted", title: "Waiting one" });
    // m-backlog only has task_assigned, which is not recorded in SQUAD_EVENTS.
    expect(mission("m-backlog")).toBeUndefined();

    const text = await runSwarm(["status"], bus.env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}tester +0 +1 +1 +3 +0 +1$/m);
    expect(text.stdout).toMatch(/^ {2}reviewer +0 +0 +0 +2\* +0 +0$/m);
    expect(text.stdout).toMatch(/^ {2}tester\/old1 +stale +10m ago +1 +4 +1 +10m +3\.0 MiB$/m);
    expect(text.stdout).toMatch(/^ {2}m-running +running +1\/0\/3 \(1 running\) .* Running one$/m);
    expect(text.stdout).toMatch(/^ {2}m-cancelling +planned \(cancelling\) /m);
    expect(text.stdout).toMatch(/^ {2}m-queued +submitted +- /m);

    await killAllSwarms();
  });

  it("exits 3 with a hint when NATS is not reachable", async () => {
    const r = await runSwarm(
      ["status", "--json"],
      swarmEnv(`nats://127.0.0.1:${await freePort()}`, bus.workspace),
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/NATS is not reachable/);
    expect(r.stderr).toMatch(/hint: start nats-server/);
  });
});
