/**
 * The merge queue from the orchestrator's side, against a real nats-server
 * and real git: a real orchestrator (in this process), missions submitted
 * with a workspace, and a stand-in worker that answers every task_assigned
 * with a real commit on the task's base (published as a bundle, like a
 * worker does) and a task_completed carrying result.changes.
 */
import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  connectBus,
  createPublisher,
  watchEvents,
  type NatsConnection,
  type Publisher,
} from "../../src/bus/index.ts";
import { silentLogger } from "../../src/log.ts";
import { startOrchestrator, type Orchestrator } from "../../src/orchestrator/orchestrator.ts";
import { orchestratorRepoRoots } from "../../src/orchestrator/merge-link.ts";
import { tasksAt } from "../helpers/mission-branch.ts";
import { makeEvent, type EventOf, type SquadEvent, type Task } from "../../src/schema/index.ts";
import { Roster } from "../../src/workers/roster.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";
import { briefText } from "./e2e-harness.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let publisher: Publisher;
let store: BundleStore;
let workspace: string;
const events: SquadEvent[] = [];
const waiters: Array<() => void> = [];
const stops: Array<() => Promise<void>> = [];

const roster = Roster.parse({
  agents: [
    {
      name: "builder",
      description: "builds",
      persona: "you build",
      tools: ["run_shell"],
      sandbox: "none",
    },
  ],
});

/** What the stand-in worker commits for one attempt: files on the attempt's base. */
type Work = (task: Task) => Record<string, string> | null | Promise<Record<string, string> | null>;
const work = new Map<string, Record<string, Work>>();

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "merge-e2e-test" });
  publisher = createPublisher(nc);
  workspace = await mkdtemp(path.join(os.tmpdir(), "squad-merge-e2e-"));
  await chmod(workspace, 0o755);
  store = await openBundleStore(nc, {
    maxBytes: 64 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 1024 * 1024,
    replicas: 1,
  });
  const watch = watchEvents(nc, {
    subject: "squad.>",
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
      if (e.type === "task_assigned" && e.mission_id) void answer(e.mission_id, e.payload.task);
    },
  });
  await watch.ready;
  stops.push(() => watch.stop());
});

afterAll(async () => {
  await killAllSwarms();
  for (const s of stops.reverse()) await s().catch(() => undefined);
  await nc?.close();
  await server?.stop();
  if (workspace) await rm(workspace, { recursive: true, force: true });
});

const workerRepo = (mission: string) =>
  MissionRepo.open(path.join(workspace, ".worker-cache"), mission, store);

/** The stand-in worker: a real commit on task.base, published, then task_started/task_completed. */
async function answer(mission: string, task: Task): Promise<void> {
  const files = await work.get(mission)?.[task.id]?.(task);
  if (files === undefined) return;
  const source = "builder/w1";
  const env = { mission_id: mission, task_id: task.id, source };
  await publisher.publish(
    makeEvent("task_started", env, { attempt: task.attempt, worker: source }),
  );
  const repo = await workerRepo(mission);
  let changes;
  if (files) {
    await repo.ensure(task.base!);
    const message = `${task.title}\n\nSquad-Mission: ${mission}\nSquad-Task: ${task.id}\nSquad-Attempt: ${task.attempt}\nSquad-Agent: builder\n`;
    const commit = await commitFiles(repo, task.base!, files, message);
    await repo.publish(commit, [task.base!]);
    changes = await repo.diffChanges(task.base!, commit);
  }
  await publisher.publish(
    makeEvent("task_completed", env, {
      result: {
        status: "succeeded",
        summary: `${task.id} done`,
        steps: [],
        verification: [],
        usage: { model: null, input_tokens: 0, output_tokens: 0 },
        attempt: task.attempt,
        duration_ms: 1,
        worker: source,
        ...(changes ? { changes } : {}),
      },
    }),
  );
}

function waitFor<T>(find: () => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const check = () => {
      const found = find();
      if (found !== undefined) resolve(found);
      else waiters.push(check);
    };
    check();
  });
}

const of = <T extends SquadEvent["type"]>(mission: string, type: T) =>
  events.filter((e): e is EventOf<T> => e.mission_id === mission && e.type === type);

const final = (mission: string) =>
  waitFor(() =>
    events.find(
      (e) =>
        e.mission_id === mission &&
        e.source === "orchestrator" &&
        (e.type === "mission_completed" || e.type === "mission_failed"),
    ),
  );

async function orchestrator(instance: string, root = workspace): Promise<Orchestrator> {
  const onc = await connectBus({ servers: server.url, name: instance });
  const o = await startOrchestrator({
    nc: onc,
    log: silentLogger,
    workspaceRoot: root,
    roster,
    instance,
    tickMs: 200,
    leaseMs: 3000,
    env: { ...process.env, SWARM_SANDBOX: "none" },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await o.stop();
    await onc.close();
  };
  stops.push(stop);
  return { ...o, stop };
}

/** A mission repository with a.txt and b.txt, published; the mission submitted with it as its base. */
async function submit(mission: string, plan: unknown, tasks: Record<string, Work>) {
  work.set(mission, tasks);
  const repo = await workerRepo(mission);
  const base = await commitFiles(repo, null, { "a.txt": "one\ntwo\nthree\n", "b.txt": "b\n" });
  await repo.publish(base, []);
  await publisher.publish(
    makeEvent(
      "mission_submitted",
      { id: `${mission}.submitted`, mission_id: mission, source: "cli" },
      {
        brief: briefText({ title: mission, plan }),
        source_path: null,
        workspace: { base, source: "empty", path: null },
      },
    ),
  );
  return base;
}

/** The tasks whose commits are on the mission branch at its end, oldest first (Squad-Task trailers). */
async function tasksOnBranch(mission: string): Promise<string[]> {
  const done = await final(mission);
  const head = (done.payload as { head?: string }).head;
  expect(head, "the final event names the branch's head").toBeDefined();
  return tasksAt(store, mission, head!, workspace);
}

const task = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  agent: "builder",
  title: `task ${id}`,
  instructions: `do ${id}`,
  ...extra,
});

describe("the merge queue in a running orchestrator", () => {
  it("merges two parallel tasks (one fast-forward, one rebased) and starts the dependent on both", async () => {
    const orch = await orchestrator("orch-parallel");
    const mission = "m-parallel";
    const plan = {
      strategy: "two files, then a check",
      waves: [
        { wave: 1, tasks: [task("a"), task("b")] },
        { wave: 2, tasks: [task("c", { depends_on: ["a", "b"] })] },
      ],
    };
    const base = await submit(mission, plan, {
      a: () => ({ "a.txt": "ONE\ntwo\nthree\n" }),
      // Finishes after a (so a fast-forwards and b is rebased).
      b: async () => {
        await waitFor(() => of(mission, "task_completed").find((e) => e.task_id === "a"));
        return { "b.txt": "B\n" };
      },
      c: () => ({ "c.txt": "c\n" }),
    });
    const done = await final(mission);
    expect(done.type).toBe("mission_completed");

    const merged = of(mission, "task_merged");
    expect(merged.map((m) => [m.task_id, m.payload.fast_forward])).toEqual([
      ["a", true],
      ["b", false],
      ["c", true],
    ]);
    expect(merged[0]!.payload.onto).toBe(base);
    expect(merged[1]!.payload.onto).toBe(merged[0]!.payload.head);
    // The dependent's base holds both changes.
    const cBase = of(mission, "task_assigned").find((e) => e.task_id === "c")!.payload.task.base!;
    expect(cBase).toBe(merged[1]!.payload.head);
    const repo = await workerRepo(mission);
    expect(await repo.git(["show", `${cBase}:a.txt`])).toContain("ONE");
    expect(await repo.git(["show", `${cBase}:b.txt`])).toBe("B");
    expect(done.payload).toMatchObject({ head: merged[2]!.payload.head });
    expect(await tasksOnBranch(mission)).toEqual(["a", "b", "c"]);
    // The orchestrator's cache of the mission goes when the mission ends (the store keeps the branch).
    const cache = path.join(orchestratorRepoRoots(workspace).cacheRoot, `${mission}.git`);
    await vi.waitFor(async () => expect(await stat(cache).catch(() => null)).toBeNull(), {
      timeout: 30_000,
    });
    await orch.stop();
  });

  it("merges one of two tasks editing the same lines; the other conflicts and is retried on the new head", async () => {
    const orch = await orchestrator("orch-conflict");
    const mission = "m-conflict";
    const plan = { strategy: "same lines", waves: [{ wave: 1, tasks: [task("a"), task("b")] }] };
    // Attempt 1 of each writes its own line 2; a retry starts from the head holding the
    // other's change and builds on it. Whichever finishes first merges.
    const edit = (t: Task) => ({
      "a.txt": t.attempt === 1 ? `one\nTWO (${t.id})\nthree\n` : "one\nTWO (both)\nthree\n",
    });
    await submit(mission, plan, { a: edit, b: edit });
    const done = await final(mission);
    expect(done.type).toBe("mission_completed");
    const [first, ...others] = of(mission, "task_merged");
    const winner = first!.task_id!;
    const loser = winner === "a" ? "b" : "a";
    const conflicted = of(mission, "task_conflicted");
    expect(
      conflicted.map((c) => [c.task_id, c.payload.attempt, c.payload.reason, c.payload.files]),
    ).toEqual([[loser, 1, "conflict", ["a.txt"]]]);
    expect(conflicted[0]!.payload.onto).toBe(first!.payload.head);
    const retry = of(mission, "task_assigned").find(
      (e) => e.task_id === loser && e.payload.task.attempt === 2,
    )!;
    expect(retry.payload.task.base).toBe(first!.payload.head);
    expect(others.map((m) => [m.task_id, m.payload.attempt])).toEqual([[loser, 2]]);
    expect(await tasksOnBranch(mission)).toEqual([winner, loser]);
    await orch.stop();
  });

  it("an orchestrator stopped mid-merge and another resuming leave each task's commit on the branch once", async () => {
    const gate = path.join(workspace, "release-verify");
    const first = await orchestrator("orch-first");
    const mission = "m-resume";
    const plan = {
      strategy: "b is re-verified on the merged tree",
      waves: [
        {
          wave: 1,
          tasks: [
            task("a"),
            // Its verify waits for the gate on the merged tree: the first orchestrator stops meanwhile.
            task("b", { verify: [`test -f b.txt && while [ ! -e ${gate} ]; do sleep 0.05; done`] }),
          ],
        },
      ],
    };
    await submit(mission, plan, {
      a: () => ({ "a.txt": "ONE\ntwo\nthree\n" }),
      // Finishes after a, so it is rebased onto a's head (and re-verified).
      b: async () => {
        // After a is merged, not only completed: else both may share one merge-queue pass,
        // whose answers wait for b's verify (held by the gate until the orchestrator is gone).
        await waitFor(() => of(mission, "task_merged").find((e) => e.task_id === "a"));
        return { "b.txt": "B\n" };
      },
    });
    await waitFor(() => of(mission, "task_merged").find((m) => m.task_id === "a"));
    // b's merged tree is checked out for verify: the merge commit exists, its event does not.
    const checkout = path.join(orchestratorRepoRoots(workspace).checkoutRoot, mission);
    for (;;) {
      if (
        await stat(checkout).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await first.stop();
    expect(of(mission, "task_merged").map((m) => m.task_id)).toEqual(["a"]);

    await writeFile(gate, "");
    await chmod(gate, 0o644);
    // Another machine's orchestrator (its own SWARM_WORKSPACE): nothing but the bus is shared.
    const elsewhere = path.join(workspace, "elsewhere");
    const second = await orchestrator("orch-second", elsewhere);
    const done = await final(mission);
    expect(done.type).toBe("mission_completed");
    const merged = of(mission, "task_merged");
    expect(merged.map((m) => m.task_id)).toEqual(["a", "b"]);
    expect(merged[1]!.payload.onto).toBe(merged[0]!.payload.head);
    expect(await tasksOnBranch(mission)).toEqual(["a", "b"]);
    expect(done.payload).toMatchObject({ head: merged[1]!.payload.head });
    await second.stop();
  });

  it("an orchestrator process SIGKILLed mid-merge and a new one resuming leave each task's commit on the branch once", async () => {
    const gate = path.join(workspace, "release-verify-kill");
    const env = swarmEnv(server.url, workspace, {
      SWARM_ROSTER: undefined,
      SWARM_SANDBOX: "none",
      SWARM_MISSION_LEASE_S: "2",
    });
    const first = spawnSwarm(["orchestrator"], env);
    await first.waitFor(/orchestrator ready/, 90_000);
    const mission = "m-kill";
    const plan = {
      strategy: "b is re-verified on the merged tree while the orchestrator dies",
      waves: [
        {
          wave: 1,
          tasks: [
            task("a"),
            task("b", { verify: [`test -f b.txt && while [ ! -e ${gate} ]; do sleep 0.05; done`] }),
          ],
        },
      ],
    };
    await submit(mission, plan, {
      a: () => ({ "a.txt": "ONE\ntwo\nthree\n" }),
      b: async () => {
        // After a is merged, not only completed: else both may share one merge-queue pass,
        // whose answers wait for b's verify (held by the gate until the orchestrator is gone).
        await waitFor(() => of(mission, "task_merged").find((e) => e.task_id === "a"));
        return { "b.txt": "B\n" };
      },
    });
    await waitFor(() => of(mission, "task_merged").find((m) => m.task_id === "a"));
    // b is rebased (its merge commit is in the cache) and being verified: kill the orchestrator now.
    const checkout = path.join(orchestratorRepoRoots(workspace).checkoutRoot, mission);
    for (;;) {
      if (
        await stat(checkout).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill("SIGKILL");
    await first.exited;
    expect(of(mission, "task_merged").map((m) => m.task_id)).toEqual(["a"]);

    await writeFile(gate, "");
    const second = spawnSwarm(["orchestrator"], env);
    await second.waitFor(/orchestrator ready/, 90_000);
    const done = await final(mission);
    expect(done.type).toBe("mission_completed");
    const merged = of(mission, "task_merged");
    expect(merged.map((m) => m.task_id)).toEqual(["a", "b"]);
    expect(merged[1]!.payload.onto).toBe(merged[0]!.payload.head);
    // The same cache repository, the same merge redone: each task's commit once on the branch.
    expect(await tasksOnBranch(mission)).toEqual(["a", "b"]);
    expect(done.payload).toMatchObject({ head: merged[1]!.payload.head });
    second.kill("SIGTERM");
    await second.exited;
  });
});
