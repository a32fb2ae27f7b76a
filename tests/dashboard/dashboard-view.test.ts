/**
 * The dashboard's first load from the mission view, on a real nats-server:
 * finished missions are listed from the view (their events unread), an
 * unfinished one is replayed whole, and opening a finished mission reads
 * its events then (only its stream range).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus } from "../../src/bus/index.ts";
import { startDashboard, type Dashboard } from "../../src/dashboard/dashboard.ts";
import type { MissionDetail, MissionSummary } from "../../src/dashboard/swarm-view.ts";
import { makeEvent, type SquadEvent } from "../../src/schema/index.ts";
import { buildMissionView } from "../helpers/mission-view.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";

const bus = useSwarmBus("dashboard-view");
let dashboard: Dashboard;

const planned = (id: string, tasks: string[]) =>
  makeEvent(
    "mission_planned",
    { mission_id: id, source: "orchestrator" },
    {
      title: `Mission ${id}`,
      planner: null,
      submitted_by: "cli",
      plan: {
        waves: [{ wave: 1, tasks: tasks.map((t) => ({ id: t, agent: "builder", title: t })) }],
      },
    },
  );

const completed = (id: string, task: string): SquadEvent =>
  makeEvent(
    "task_completed",
    { mission_id: id, task_id: task, source: "builder/b1" },
    {
      result: {
        status: "succeeded",
        summary: "done",
        steps: [],
        verification: [],
        usage: { model: "ollama:qwen", input_tokens: 7, output_tokens: 3 },
        attempt: 1,
        duration_ms: 5,
        worker: "builder/b1",
      },
    },
  );

const ended = (id: string) =>
  makeEvent(
    "mission_completed",
    { mission_id: id, source: "orchestrator" },
    {
      summary: "1 of 1",
      tasks: { total: 1, succeeded: 1, failed: 0 },
      duration_ms: 10,
      usage: { input_tokens: 7, output_tokens: 3 },
      report: null,
    },
  );

beforeAll(async () => {
  for (const e of [planned("m-old", ["a"]), completed("m-old", "a"), ended("m-old")])
    await bus.publisher.publish(e);
  await bus.publisher.publish(planned("m-live", ["x", "y"]));
  await buildMissionView(bus.nc);
  dashboard = await startDashboard({
    host: "127.0.0.1",
    port: 0,
    token: "dashboard-view-test-token-0123456789",
    connect: () => connectBus({ servers: bus.server.url, name: "dashboard-view" }),
    actions: {
      decide: () => Promise.reject(new Error("not in this test")),
      cancel: () => Promise.reject(new Error("not in this test")),
    },
    filters: () => ({
      observe: () => undefined,
      accepts: () => true,
      acceptsDeadLetter: () => true,
    }),
  });
  // The first load is done when the feed is up (the state says so).
  await new Promise<void>((resolve) => {
    if (dashboard.state.nats.state === "up") return resolve();
    const off = dashboard.state.subscribe({
      nats: (s) => {
        if (s.state === "up") {
          off();
          resolve();
        }
      },
      change: () => undefined,
      item: () => undefined,
    });
  });
});

afterAll(async () => {
  await dashboard?.stop();
});

async function get<T>(p: string): Promise<T> {
  const r = await fetch(new URL(p, dashboard.url));
  expect(r.status, p).toBe(200);
  return (await r.json()) as T;
}

describe("the dashboard's first load reads the mission view", () => {
  it("lists the finished mission from the view and the live one from its events; opening the finished one reads its events", async () => {
    const { missions } = await get<{ missions: MissionSummary[] }>("/api/missions");
    const old = missions.find((m) => m.id === "m-old");
    expect(old).toMatchObject({
      title: "Mission m-old",
      status: "completed",
      submitted_by: "cli",
      progress: { total: 1, succeeded: 1, failed: 0, running: 0 },
      tokens: { "ollama:qwen": { input_tokens: 7, output_tokens: 3 } },
    });
    expect(missions.find((m) => m.id === "m-live")).toMatchObject({
      status: "planned",
      progress: { total: 2 },
    });
    // Its events were not read at the first load: the view's summary stands in.
    expect(dashboard.state.view.mission("m-old", new Date())!.tasks).toEqual([]);

    const { mission } = await get<{ mission: MissionDetail }>("/api/missions/m-old");
    expect(mission.status).toBe("completed");
    expect(mission.tasks.map((t) => [t.id, t.state])).toEqual([["a", "succeeded"]]);
    expect(mission.tasks[0]!.attempts[0]!.usage).toMatchObject({ input_tokens: 7 });
  });
});
