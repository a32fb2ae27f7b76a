/**
 * The merge queue with real `swarm orchestrator` and `swarm worker`
 * processes: a mission submitted with a git workspace (its base made and
 * uploaded here, as a submitter does), tasks whose `run` steps change files
 * in their own checkouts, commits shipped as bundles, merged by the
 * orchestrator onto the mission branch.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher } from "../../src/bus/index.ts";
import { newMissionId } from "../../src/client/submission.ts";
import { makeEvent, type EventOf, type SquadEvent } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { tasksAt } from "../helpers/mission-branch.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";
import { briefText, ofType, plan, startSwarm, type Swarm } from "./e2e-harness.ts";

let swarm: Swarm;
let store: BundleStore;

beforeAll(async () => {
  swarm = await startSwarm({ SWARM_SANDBOX: "none" });
  const orch = swarm.spawnOrchestrator();
  await swarm.ready(orch, "orchestrator");
  const worker = swarm.spawnWorker("builder", { concurrency: 2 });
  await swarm.ready(worker, "worker");
  store = await openBundleStore(swarm.nc, {
    maxBytes: 64 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 1024 * 1024,
    replicas: 1,
  });
}, 180_000);

afterAll(async () => {
  await swarm?.stop();
});

/** Make the mission's base (a.txt, shared.txt), upload it, submit the brief with it. */
async function submitWithBase(
  front: Record<string, unknown>,
): Promise<{ id: string; base: string }> {
  const id = newMissionId();
  const repo = await MissionRepo.open(path.join(swarm.workspace, ".submitter"), id, store);
  const base = await commitFiles(repo, null, { "a.txt": "a\n", "shared.txt": "one\ntwo\n" });
  await repo.publish(base, []);
  await createPublisher(swarm.nc).publish(
    makeEvent(
      "mission_submitted",
      { id: `${id}.submitted`, mission_id: id, source: "cli" },
      {
        brief: briefText(front),
        source_path: null,
        workspace: { base, source: "empty", path: null },
      },
    ),
  );
  return { id, base };
}

/** Task ids of the commits on the mission branch at its end (final event's head), oldest first. */
async function branchTasks(final: SquadEvent): Promise<string[]> {
  const head = (final as EventOf<"mission_completed">).payload.head;
  expect(head, "the final event names the branch's head").toBeDefined();
  return tasksAt(store, final.mission_id!, head!, swarm.workspace);
}

describe("the merge queue with real workers", () => {
  it("merges two parallel tasks editing different files; the dependent sees both and the branch has one commit per task", async () => {
    const { id } = await submitWithBase({
      title: "two files then both",
      agents: ["builder"],
      plan: plan(
        [
          { id: "edit_a", agent: "builder", run: ["printf 'A\\n' >> a.txt"] },
          { id: "make_b", agent: "builder", run: ["printf 'B\\n' > b.txt"] },
        ],
        [
          {
            id: "both",
            agent: "builder",
            run: ["cat a.txt b.txt > both.txt"],
            verify: ["grep -q A both.txt", "grep -q B both.txt"],
          },
        ],
      ),
    });
    const final = await swarm.waitFinal(id, 90_000);
    expect(final.type).toBe("mission_completed");
    const events = await swarm.events(id);
    const merged = ofType(events, "task_merged");
    expect(merged.map((m) => m.task_id).sort()).toEqual(["both", "edit_a", "make_b"]);
    expect(merged.filter((m) => m.payload.fast_forward).length).toBeGreaterThanOrEqual(2);
    // The dependent's checkout started from the head holding both (its commit's base).
    const both = ofType(events, "task_completed").find((e) => e.task_id === "both")!;
    const lastOfWave1 = merged.filter((m) => m.task_id !== "both").at(-1)!;
    expect(both.payload.result.changes?.base).toBe(lastOfWave1.payload.head);
    expect((final as EventOf<"mission_completed">).payload.head).toBe(merged.at(-1)!.payload.head);
    const onBranch = await branchTasks(final);
    expect(onBranch.sort()).toEqual(["both", "edit_a", "make_b"]);
  }, 120_000);

  it("two tasks changing the same line: one merges, the other conflicts, is retried on the new head and the mission completes", async () => {
    const { id } = await submitWithBase({
      title: "same line",
      agents: ["builder"],
      plan: plan([
        { id: "left", agent: "builder", run: ["sed -i 's/^two.*$/two (left)/' shared.txt"] },
        // On a retry (the head holds the other's change) each sed still finds the line to change.
        { id: "right", agent: "builder", run: ["sed -i 's/^two.*$/two (right)/' shared.txt"] },
      ]),
    });
    const final = await swarm.waitFinal(id, 90_000);
    expect(final.type).toBe("mission_completed");
    const events = await swarm.events(id);
    const conflicted = ofType(events, "task_conflicted");
    expect(conflicted).toHaveLength(1);
    expect(conflicted[0]!.payload).toMatchObject({
      attempt: 1,
      reason: "conflict",
      files: ["shared.txt"],
    });
    const loser = conflicted[0]!.task_id!;
    const merged = ofType(events, "task_merged");
    expect(merged.map((m) => [m.task_id, m.payload.attempt])).toEqual([
      [loser === "left" ? "right" : "left", 1],
      [loser, 2],
    ]);
    const retry = ofType(events, "task_completed").find(
      (e) => e.task_id === loser && e.payload.result.attempt === 2,
    )!;
    expect(retry.payload.result.changes?.base).toBe(merged[0]!.payload.head);
    expect((await branchTasks(final)).length).toBe(2);
  }, 120_000);
});
