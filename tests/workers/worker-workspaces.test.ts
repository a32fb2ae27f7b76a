/**
 * Git workspaces on the worker side, through real replicas on a real
 * nats-server with the real sandbox: a task with a `base` runs in its own
 * checkout of that commit, its changes come back as a commit in
 * `result.changes` (fetched by another cache, as the orchestrator would),
 * a failed attempt's files never reach its retry, and the mission's
 * checkouts are gone when it ends.
 */
import { chmod, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { silentLogger } from "../../src/log.ts";
import type { TaskResult } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import type { RosterAgent } from "../../src/workers/roster.ts";
import { createWorkerWorkspaces, workerCacheRoot } from "../../src/workers/worker-workspaces.ts";
import { startWorkerReplica, type WorkerReplica } from "../../src/workers/worker-replica.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";
import { assign, endMission, makeTask, newMission, startBus, type Bus } from "./worker-harness.ts";

let bus: Bus;
let store: BundleStore;
let scratch: string;
let orchestrator: string;
const replicas: WorkerReplica[] = [];
const connections: NatsConnection[] = [];
const roots: Record<string, string> = {};

const agent = (name: string): RosterAgent => ({
  name,
  description: "test agent",
  persona: "You are a test agent.",
  tools: ["run_shell"],
  sandbox: "bwrap",
});

async function replica(name: string, instance: string, env: NodeJS.ProcessEnv = {}) {
  const nc = await connectBus({ servers: bus.server.url, name: instance });
  connections.push(nc);
  // Each replica its own workspace root: nothing shared but NATS.
  const root = await mkdtemp(path.join(scratch, `${instance}-`));
  roots[instance] = root;
  const r = await startWorkerReplica({
    nc,
    agent: agent(name),
    instance,
    concurrency: 2,
    workspaceRoot: root,
    defaultModel: "ollama:none",
    version: "test",
    log: silentLogger,
    heartbeatMs: 60_000,
    env: { PATH: process.env.PATH, ...env },
  });
  replicas.push(r);
  return r;
}

/** A mission base as the submitter makes it (published to the store). */
async function missionBase(mission: string, files: Record<string, string>) {
  const repo = await MissionRepo.open(path.join(scratch, "submitter"), mission, store);
  const base = await commitFiles(repo, null, files);
  await repo.publish(base, []);
  return base;
}

async function resultOf(mission: string, task: string): Promise<TaskResult> {
  return (await bus.events.result(mission, task, 30_000)).payload.result;
}

beforeAll(async () => {
  bus = await startBus();
  scratch = await mkdtemp(path.join(tmpdir(), "squad-worker-ws-"));
  await chmod(scratch, 0o711); // the sandbox user passes through to its checkouts
  orchestrator = path.join(scratch, "orchestrator");
  store = await openBundleStore(bus.nc, {
    maxBytes: 256 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 64 * 1024 * 1024,
    replicas: 1,
  });
  await replica("coder", "wa");
  await replica("coder", "wb");
  await replica("tiny", "wt", { SWARM_BUNDLE_LIMIT_BYTES: "4096" });
  // One replica: a retry reuses the slot (and directory) its first attempt had.
  await replica("solo", "ws");
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop("test over")));
  await Promise.all(connections.map((c) => c.close()));
  await bus?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("a task with a base", () => {
  it("runs in its own checkout of the base, and its changes come back as a published commit", async () => {
    const mission = newMission("ws-commit");
    const base = await missionBase(mission, { "README.md": "hello\n", "src/a.txt": "a\n" });
    const run = [
      "test -f README.md && test -f src/a.txt",
      "test ! -e .git",
      "echo b >> src/a.txt && echo new > new.txt && rm README.md",
    ];
    await assign(
      bus,
      mission,
      makeTask({ id: "t1", agent: "coder", base, run, verify: ["grep -q b src/a.txt"] }),
    );
    const r = await resultOf(mission, "t1");
    expect(r.status).toBe("succeeded");
    expect(r.changes).toMatchObject({
      base,
      files: [
        { path: "README.md", status: "deleted", additions: 0, deletions: 1 },
        { path: "new.txt", status: "added", additions: 1 },
        { path: "src/a.txt", status: "modified", additions: 1, deletions: 0 },
      ],
      additions: 2,
      deletions: 1,
    });
    // Another machine's cache (the orchestrator's) gets it through the object store only.
    const orch = await MissionRepo.open(orchestrator, mission, store);
    await orch.ensure(r.changes!.commit);
    const [commit] = await orch.log(base, r.changes!.commit);
    expect(commit).toMatchObject({
      parents: [base],
      subject: "task t1",
      trailers: {
        "Squad-Mission": mission,
        "Squad-Task": "t1",
        "Squad-Attempt": "1",
        "Squad-Agent": "coder",
      },
    });
    expect(commit!.author).toMatch(/^coder\/w[ab] <coder@squad\.local>$/);
  });

  it("parallel tasks each see only the base, never each other's work", async () => {
    const mission = newMission("ws-parallel");
    const base = await missionBase(mission, { "shared.txt": "s\n" });
    const tasks = ["p1", "p2", "p3", "p4"];
    for (const id of tasks) {
      const others = tasks
        .filter((t) => t !== id)
        .map((t) => `test ! -e ${t}.txt`)
        .join(" && ");
      await assign(
        bus,
        mission,
        makeTask({
          id,
          agent: "coder",
          base,
          run: [`echo ${id} > ${id}.txt; sleep 0.3; ${others}`],
        }),
      );
    }
    for (const id of tasks) {
      const r = await resultOf(mission, id);
      expect(r.status, r.error).toBe("succeeded");
      expect(r.changes!.files.map((f) => f.path)).toEqual([`${id}.txt`]);
    }
  });

  it("a task that changes nothing makes no commit; run: [] needs no checkout at all", async () => {
    const mission = newMission("ws-noop");
    const base = await missionBase(mission, { "a.txt": "a\n" });
    await assign(bus, mission, makeTask({ id: "look", agent: "coder", base, run: ["cat a.txt"] }));
    await assign(bus, mission, makeTask({ id: "noop", agent: "coder", base, run: [] }));
    const look = await resultOf(mission, "look");
    expect(look.status).toBe("succeeded");
    expect(look.changes).toBeUndefined();
    const noop = await resultOf(mission, "noop");
    expect(noop.status).toBe("succeeded");
    expect(noop.changes).toBeUndefined();
  });

  it("a failed attempt's half-written file is kept under a ref, and absent from the retry", async () => {
    const mission = newMission("ws-retry");
    const base = await missionBase(mission, { "a.txt": "a\n" });
    const first = makeTask({
      id: "t",
      agent: "solo",
      base,
      run: ["echo half > half.txt; echo x >> a.txt; exit 3"],
    });
    await assign(bus, mission, first);
    const r1 = await resultOf(mission, "t");
    expect(r1.status).toBe("failed");
    expect(r1.changes?.files.map((f) => f.path)).toEqual(["a.txt", "half.txt"]);
    // ... and the retry, on the same slot or another, sees exactly the base
    await assign(
      bus,
      mission,
      makeTask({
        id: "t",
        agent: "solo",
        base,
        attempt: 2,
        run: ['test ! -e half.txt && test "$(cat a.txt)" = a && echo ok > done.txt'],
      }),
    );
    await bus.events.waitFor(
      "task_completed",
      (e) => e.mission_id === mission && e.task_id === "t",
      30_000,
    );
    const r2 = bus.events.forTask("task_completed", mission, "t")[0]!.payload.result;
    expect(r2.changes!.files.map((f) => f.path)).toEqual(["done.txt"]);
    expect(await readdir(path.join(roots.ws!, mission))).toEqual(["ws-0"]);
    const orch = await MissionRepo.open(orchestrator, mission, store);
    await orch.ensure(r1.changes!.commit);
    expect((await orch.log(base, r1.changes!.commit))[0]!.trailers["Squad-Status"]).toBe("failed");
  });

  it("a commit over SWARM_BUNDLE_LIMIT_BYTES fails the task and says how to raise the limit", async () => {
    const mission = newMission("ws-big");
    const base = await missionBase(mission, { "a.txt": "a\n" });
    await assign(
      bus,
      mission,
      makeTask({ id: "big", agent: "tiny", base, run: ["head -c 65536 /dev/urandom > blob.bin"] }),
    );
    const r = await resultOf(mission, "big");
    expect(r.status).toBe("failed");
    expect(r.error).toMatch(/over the limit of 4\.0 KiB .*SWARM_BUNDLE_LIMIT_BYTES/);
    expect(r.retryable).toBe(false);
    expect(r.changes).toBeUndefined();
  });

  it("a base missing from the store fails the attempt naming mission and commit", async () => {
    const mission = newMission("ws-nobase");
    const repo = await MissionRepo.open(path.join(scratch, "submitter"), mission, store);
    const base = await commitFiles(repo, null, { "a.txt": "a\n" }); // never published
    await assign(bus, mission, makeTask({ id: "t", agent: "coder", base, run: ["true"] }));
    const r = await resultOf(mission, "t");
    expect(r.status).toBe("failed");
    expect(r.error).toContain(mission);
    expect(r.error).toContain(base);
  });

  it("the mission's checkouts and caches are removed when it ends", async () => {
    const mission = newMission("ws-end");
    const base = await missionBase(mission, { "a.txt": "a\n" });
    await assign(
      bus,
      mission,
      makeTask({ id: "t", agent: "coder", base, run: ["echo x > x.txt"] }),
    );
    const r = await resultOf(mission, "t");
    const instance = r.worker.split("/")[1]!;
    const root = roots[instance]!;
    expect((await readdir(path.join(root, mission))).length).toBeGreaterThan(0);
    expect((await stat(path.join(workerCacheRoot(root), `${mission}.git`))).isDirectory()).toBe(
      true,
    );
    await endMission(bus, mission, "mission_cancelled", "test over");
    // Removal follows the mission_cancelled event the replica watches: wait on the file system.
    await vi.waitFor(
      async () => {
        expect(await stat(path.join(root, mission)).catch(() => null)).toBeNull();
        expect(
          await stat(path.join(workerCacheRoot(root), `${mission}.git`)).catch(() => null),
        ).toBeNull();
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it("measures the disk its checkouts and caches take (shown by swarm status)", async () => {
    const mission = newMission("ws-disk");
    const base = await missionBase(mission, { "big.txt": "x".repeat(200_000) });
    const nc = await connectBus({ servers: bus.server.url, name: "disk" });
    connections.push(nc);
    const root = await mkdtemp(path.join(scratch, "disk-"));
    const ws = createWorkerWorkspaces({ nc, root, instance: "wd", env: {}, log: silentLogger });
    const checkout = await ws.acquire(mission, base);
    // The first ask starts a measurement in the background and answers the last one (none yet).
    expect(ws.diskBytes()).toBe(0);
    await vi.waitFor(() => expect(ws.diskBytes()).toBeGreaterThan(200_000), { timeout: 10_000 });
    await checkout.release();
  });
});
