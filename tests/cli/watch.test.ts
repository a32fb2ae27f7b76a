import { readFile } from "node:fs/promises";
import path from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import {
  buildDlqRecord,
  createPublisher,
  publishDeadLetter,
  replayEvents,
} from "../../src/bus/index.ts";
import { useColor } from "../../src/cli/color.ts";
import { submitMission } from "../../src/client/submission.ts";
import { makeEvent, parseEvent, type SquadEvent } from "../../src/schema/index.ts";
import { taskAssignedEvent } from "../helpers/example-events.ts";
import { freePort } from "../helpers/nats-server.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import {
  REPO_ROOT,
  killAllSwarms,
  runSwarm,
  spawnSwarm,
  swarmEnv,
} from "../helpers/swarm-process.ts";

const bus = useSwarmBus("watch");

/** Every stdout line as a validated event (parseEvent throws on anything else). */
function eventLines(stdout: string): SquadEvent[] {
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => parseEvent(JSON.parse(l)));
}

const DEMO_TASKS = [
  "scaffold",
  "slugify",
  "wordcount",
  "test-slugify",
  "test-words",
  "index",
  "full-suite",
  "api-docs",
];
/** From the demo brief's plan: task → what it waits for. */
const DEMO_DEPENDS: Record<string, string[]> = {
  "test-slugify": ["slugify", "scaffold"],
  "test-words": ["wordcount", "scaffold"],
  index: ["slugify", "wordcount"],
  "full-suite": ["test-slugify", "test-words", "index"],
  "api-docs": ["test-slugify", "test-words", "index"],
};

/** The lifecycle order a correct view of the demo mission must show. */
function expectDemoOrder(events: SquadEvent[], missionId: string, withAssigned: boolean): void {
  expect(events.every((e) => e.mission_id === missionId)).toBe(true);
  const at = (type: string, task?: string) =>
    events.findIndex((e) => e.type === type && (task === undefined || e.task_id === task));
  expect(at("mission_planned")).toBeGreaterThanOrEqual(0);
  expect(events.at(-1)).toMatchObject({ type: "mission_completed", source: "orchestrator" });
  for (const t of DEMO_TASKS) {
    expect(at("mission_planned")).toBeLessThan(at("task_started", t));
    if (withAssigned) {
      expect(at("task_assigned", t)).toBeGreaterThanOrEqual(0);
      expect(at("task_assigned", t)).toBeLessThan(at("task_started", t));
    }
    expect(at("task_started", t)).toBeLessThan(at("task_completed", t));
    const progress = events
      .map((e, i) => (e.type === "task_progress" && e.task_id === t ? i : -1))
      .filter((i) => i >= 0);
    expect(progress.length).toBeGreaterThan(0);
    for (const i of progress) {
      expect(i).toBeGreaterThan(at("task_started", t));
      expect(i).toBeLessThan(at("task_completed", t));
    }
    for (const dep of DEMO_DEPENDS[t] ?? [])
      expect(at("task_completed", dep)).toBeLessThan(at("task_started", t));
  }
  for (const w of [1, 2, 3]) {
    const started = events.findIndex((e) => e.type === "wave_started" && e.payload.wave === w);
    const done = events.findIndex((e) => e.type === "wave_completed" && e.payload.wave === w);
    expect(started).toBeGreaterThanOrEqual(0);
    expect(started).toBeLessThan(done);
  }
}

describe("swarm watch", () => {
  it("follows a real mission from submission to its end; a late watcher replays it from SQUAD_EVENTS", async () => {
    const procs = [
      spawnSwarm(["orchestrator"], bus.env),
      ...["builder", "tester", "docs_writer"].map((a) =>
        spawnSwarm(["worker", "--agent", a], bus.env),
      ),
    ];
    await Promise.all(procs.map((p) => p.waitFor(/orchestrator ready|worker replica online/)));

    // The submitter picks the id, so a watcher can start before the mission exists.
    const missionId = "m-watch-demo";
    const early = spawnSwarm(["watch", "--json", "--mission", missionId], bus.env);
    await early.waitFor(/"msg":"watching"/);
    const briefPath = path.join(REPO_ROOT, "mission-briefs/demo-library.md");
    await submitMission(bus.nc, {
      brief: await readFile(briefPath, "utf8"),
      sourcePath: briefPath,
      missionId,
    });
    // It ends by itself after the orchestrator's final event: 0 because it completed.
    expect((await early.exited).code).toBe(0);
    const live = eventLines(early.stdout());
    expect(live[0]).toMatchObject({ type: "mission_submitted", source: "cli" });
    expectDemoOrder(live, missionId, true);
    expect(live.filter((e) => e.type === "task_assigned")).toHaveLength(DEMO_TASKS.length);

    // Started after the end: the whole recorded history, in stream order, then exit 0 at once.
    const late = await runSwarm(["watch", "--json", "--mission", missionId], bus.env, {
      timeoutMs: 30_000,
    });
    expect(late.code).toBe(0);
    const replayed = eventLines(late.stdout);
    const recorded: string[] = [];
    for await (const { event } of replayEvents(bus.nc, { missionId })) recorded.push(event.id);
    expect(replayed.map((e) => e.id)).toEqual(recorded);
    expectDemoOrder(replayed, missionId, false);
    // Live it saw the same lifecycle events, plus what is not recorded in SQUAD_EVENTS.
    const liveRecorded = live.filter(
      (e) => !["task_assigned", "mission_submitted"].includes(e.type),
    );
    expect(liveRecorded.map((e) => e.id).sort()).toEqual([...recorded].sort());

    // --since-start: everything recorded first (here: one mission), then live until Ctrl-C.
    const history = spawnSwarm(
      ["watch", "--since-start", "--json", "--type", "mission_planned,mission_completed"],
      bus.env,
    );
    await history.waitFor(/"msg":"watching"/);
    history.kill("SIGINT");
    expect((await history.exited).code).toBe(0);
    expect(eventLines(history.stdout()).map((e) => [e.type, e.mission_id])).toEqual([
      ["mission_planned", missionId],
      ["mission_completed", missionId],
    ]);

    // Gone without a word (no agent_offline), so the next test sees only its own events.
    await killAllSwarms();
  });

  it("filters by agent and type, shows dead letters on their own line and invalid messages as warnings", async () => {
    const watcher = spawnSwarm(["watch", "--agent", "builder"], bus.env);
    const typed = spawnSwarm(["watch", "--type", "task_assigned,dead_letter", "--json"], bus.env);
    await Promise.all([watcher, typed].map((w) => w.waitFor(/"msg":"watching"/)));

    const pub = createPublisher(bus.nc);
    const status = (agent: string, instance: string) =>
      makeEvent(
        "agent_heartbeat",
        { mission_id: null, source: `${agent}/${instance}` },
        { agent, instance, in_flight: 0, completed: 7, failed: 0, uptime_s: 9 },
      );
    await pub.publish(taskAssignedEvent("builder", "b-task", { missionId: "m-filter" }));
    await pub.publish(taskAssignedEvent("tester", "t-task", { missionId: "m-filter" }));
    await pub.publish(
      makeEvent(
        "task_started",
        { mission_id: "m-filter", task_id: "t-task", source: "tester/i2" },
        { attempt: 1, worker: "tester/i2" },
      ),
    );
    await pub.publish(
      makeEvent(
        "task_started",
        { mission_id: "m-filter", task_id: "b-task", source: "builder/i1" },
        { attempt: 1, worker: "builder/i1" },
      ),
    );
    await pub.publish(status("tester", "i2"));
    await pub.publish(status("builder", "i1"));
    bus.nc.publish("squad.coordination", "this is not json");
    const js = jetstream(bus.nc);
    for (const agent of ["tester", "builder"]) {
      await publishDeadLetter(
        js,
        buildDlqRecord({
          reason: "not JSON: Unexpected token",
          agent,
          subject: `squad.tasks.${agent}`,
          streamSeq: agent === "builder" ? 901 : 902,
          deliveryCount: 1,
          data: new TextEncoder().encode("garbage"),
        }),
      );
    }
    // A last builder event: once it shows, everything before it was handled.
    await pub.publish(
      makeEvent(
        "agent_offline",
        { mission_id: null, source: "builder/i1" },
        { agent: "builder", instance: "i1", reason: "end of test" },
      ),
    );
    await watcher.waitFor(/builder\/i1 offline: end of test/);
    // stderr is another pipe: its line may arrive after the stdout ones.
    await watcher.waitFor(/warning: invalid message on squad\.coordination/);
    await typed.waitFor(/"stream_seq":901/);

    const lines = watcher.stdout().trim().split("\n");
    expect(lines.map((l) => l.replace(/^\S+ /, ""))).toEqual([
      expect.stringMatching(/^m-filter task_assigned +b-task → builder/),
      expect.stringMatching(/^m-filter task_started +b-task started on builder\/i1/),
      expect.stringMatching(/^- agent_heartbeat +builder\/i1 heartbeat: 0 in flight, 7 done/),
      expect.stringMatching(
        /^- DEAD LETTER +builder: squad\.tasks\.builder seq 901, delivery 1: not JSON/,
      ),
      expect.stringMatching(/^- agent_offline +builder\/i1 offline: end of test/),
    ]);
    expect(watcher.stderr()).toMatch(
      /warning: invalid message on squad\.coordination: not JSON: .* \| this is not json/,
    );
    expect(watcher.stdout()).not.toContain("tester");

    const typedLines = typed
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(typedLines.map((l) => l.type ?? l.kind)).toEqual([
      "task_assigned",
      "task_assigned",
      "dead_letter",
      "dead_letter",
    ]);
    expect(typedLines[2]).toMatchObject({
      kind: "dead_letter",
      subject: "squad.dlq.tester",
      record: { agent: "tester", stream_seq: 902, data: "garbage" },
    });

    // Ctrl-C ends a watch without a mission: exit 0.
    for (const w of [watcher, typed]) w.kill("SIGINT");
    expect((await watcher.exited).code).toBe(0);
    expect((await typed.exited).code).toBe(0);
  });

  it("exits 2 on bad flags and 3 when NATS is not reachable", async () => {
    const badType = await runSwarm(["watch", "--type", "task_done"], bus.env);
    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/unknown event type "task_done"/);
    const badMission = await runSwarm(["watch", "--mission", "no/such"], bus.env);
    expect(badMission.code).toBe(2);
    expect(badMission.stderr).toMatch(/invalid mission id "no\/such"/);

    const down = await runSwarm(
      ["watch"],
      swarmEnv(`nats://127.0.0.1:${await freePort()}`, bus.workspace),
    );
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/NATS is not reachable/);
    expect(down.stderr).toMatch(/hint: /);
  });

  it("colours as Node's own detection says: a colour terminal, FORCE_COLOR, never NO_COLOR", () => {
    const term = { TERM: "xterm-256color" };
    expect(useColor({ isTTY: true }, term)).toBe(true);
    expect(useColor({ isTTY: true }, { ...term, NO_COLOR: "1" })).toBe(false);
    expect(useColor({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(useColor({ isTTY: false }, term)).toBe(false);
    expect(useColor({}, term)).toBe(false);
    // FORCE_COLOR turns it on for pipes too (CI logs), and FORCE_COLOR=0 off on a terminal.
    expect(useColor({ isTTY: false }, { FORCE_COLOR: "1" })).toBe(true);
    expect(useColor({ isTTY: true }, { ...term, FORCE_COLOR: "0" })).toBe(false);
  });
});
