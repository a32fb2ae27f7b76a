/**
 * End to end, when orchestrators die or crowd: a real nats-server, real
 * worker processes, and `swarm orchestrator` processes killed with SIGKILL
 * in the middle of a mission. Short mission leases (SWARM_MISSION_LEASE_S)
 * make takeovers quick.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SwarmProcess } from "../helpers/swarm-process.ts";
import { briefText, countByTask, is, ofType, plan, startSwarm, type Swarm } from "./e2e-harness.ts";

let swarm: Swarm;
const LEASE = { SWARM_MISSION_LEASE_S: "2" };

beforeAll(async () => {
  swarm = await startSwarm();
  const workers = [
    swarm.spawnWorker("builder", { concurrency: 2 }),
    swarm.spawnWorker("tester", { concurrency: 2 }),
  ];
  await Promise.all(workers.map((w) => swarm.ready(w, "worker")));
});

afterEach(async () => {
  await swarm.killOrchestrators();
});

afterAll(async () => {
  await swarm?.stop();
});

async function orchestrator(): Promise<SwarmProcess> {
  const p = swarm.spawnOrchestrator(LEASE);
  await swarm.ready(p, "orchestrator");
  return p;
}

/** Five tasks in three waves; `slow` runs long enough for a kill to land while it works. */
function fiveTasks(title: string, slowS = 4) {
  return briefText({
    title,
    plan: plan(
      [
        { id: "a1", agent: "builder", run: ["echo a1 >> a1.txt"] },
        { id: "a2", agent: "tester", run: ["echo a2 >> a2.txt"] },
      ],
      [
        {
          id: "slow",
          agent: "builder",
          depends_on: ["a1"],
          run: [`sleep ${slowS}`, "echo slow >> slow.txt"],
        },
        { id: "b1", agent: "tester", depends_on: ["a2"], run: ["echo b1 >> b1.txt"] },
      ],
      [
        {
          id: "c1",
          agent: "tester",
          run: ["test $(cat a1.txt a2.txt slow.txt b1.txt | wc -l) -eq 4"],
        },
      ],
    ),
  });
}

/** Lines of a process's pino log with this message. */
function logged(p: SwarmProcess, msg: string, missionId: string): boolean {
  return p
    .stderr()
    .split("\n")
    .some((line) => line.includes(`"msg":"${msg}"`) && line.includes(missionId));
}

/** The tasks that had succeeded, and the dispatches made, up to now. */
async function snapshot(id: string) {
  const events = await swarm.events(id);
  return {
    succeeded: new Set(ofType(events, "task_completed").map((e) => e.task_id!)),
    dispatches: swarm.dispatchesOf(id).length,
  };
}

/** Every task ran once, and nothing that had succeeded before `before` was dispatched after it. */
async function expectEachTaskRanOnce(id: string, before: Awaited<ReturnType<typeof snapshot>>) {
  const events = await swarm.events(id);
  const once = { a1: 1, a2: 1, slow: 1, b1: 1, c1: 1 };
  expect(countByTask(events, "task_started")).toEqual(once);
  expect(countByTask(events, "task_completed")).toEqual(once);
  expect(ofType(events, "task_failed")).toEqual([]);
  const after = swarm.dispatchesOf(id).slice(before.dispatches);
  expect(after.filter((d) => before.succeeded.has(d.task))).toEqual([]);
  // A re-dispatch after the crash is the same attempt (deduplicated), never a new one.
  expect(swarm.dispatchesOf(id).every((d) => d.attempt === 1)).toBe(true);
  const { json } = await swarm.report(id);
  expect(json).toMatchObject({ status: "completed", tasks: { total: 5, succeeded: 5, failed: 0 } });
}

describe("orchestrator crashes and several orchestrators", () => {
  it("completes a mission after the orchestrator is SIGKILLed mid-mission and started again", async () => {
    const first = await orchestrator();
    const id = await swarm.submit(fiveTasks("Survives a crash"));
    await swarm.waitEvent(id, (e): e is never => e.type === "task_started" && e.task_id === "slow");
    const before = await snapshot(id);
    expect(before.succeeded.has("a1")).toBe(true);
    first.kill("SIGKILL");
    await first.exited;

    const second = await orchestrator();
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    await expectEachTaskRanOnce(id, before);
    expect(logged(second, "resuming mission", id)).toBe(true);
  });

  it("runs a mission once when two orchestrators are up", async () => {
    const [one, two] = await Promise.all([orchestrator(), orchestrator()]);
    const id = await swarm.submit(fiveTasks("Two captains", 2));
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    // Every task was dispatched exactly once, by one orchestrator.
    expect(
      swarm
        .dispatchesOf(id)
        .map((d) => d.task)
        .sort(),
    ).toEqual(["a1", "a2", "b1", "c1", "slow"]);
    await expectEachTaskRanOnce(id, { succeeded: new Set(), dispatches: 0 });
    const planners = [one, two].filter((p) => logged(p, "mission planned", id));
    expect(planners).toHaveLength(1);
    expect([one, two].some((p) => logged(p, "resuming mission", id))).toBe(false);
  });

  it("lets a second orchestrator take over the missions of one that died", async () => {
    const [one, two] = await Promise.all([orchestrator(), orchestrator()]);
    const id = await swarm.submit(fiveTasks("Handover"));
    await swarm.waitEvent(id, (e): e is never => e.type === "task_started" && e.task_id === "slow");
    const owner = logged(one, "mission planned", id) ? one : two;
    const survivor = owner === one ? two : one;
    const before = await snapshot(id);
    owner.kill("SIGKILL");
    await owner.exited;

    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    await expectEachTaskRanOnce(id, before);
    expect(logged(survivor, "resuming mission", id)).toBe(true);
    // The final event came from the survivor, after the owner was gone.
    const events = await swarm.events(id);
    expect(events.filter(is("mission_completed"))).toHaveLength(1);
  });
});
