/**
 * A worker process SIGKILLed in the middle of an attempt (its checkout
 * half-written, a lock of its own left in the mission's cache repository):
 * a new worker process on the same workspace root takes the next attempt
 * from exactly its base, nothing blocks it, and when the mission ends the
 * dead process's checkout goes too. Real `swarm worker` processes.
 */
import { chmod, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { workerCacheRoot } from "../../src/workers/worker-workspaces.ts";
import { killAllSwarms } from "../helpers/swarm-process.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";
import {
  assign,
  endMission,
  makeTask,
  newMission,
  spawnWorker,
  startBus,
  type Bus,
} from "./worker-harness.ts";

let bus: Bus;
let store: BundleStore;
const ENV = {
  SWARM_ACK_WAIT_MS: "2000",
  SWARM_LEASE_MS: "3000",
  SWARM_HEARTBEAT_MS: "250",
  SWARM_SANDBOX: "none",
};

beforeAll(async () => {
  bus = await startBus();
  await chmod(bus.workspace, 0o711);
  store = await openBundleStore(bus.nc, {
    maxBytes: 64 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 16 * 1024 * 1024,
    replicas: 1,
  });
});

afterAll(async () => {
  await killAllSwarms();
  await bus?.close();
});

describe("a worker killed mid-attempt", () => {
  it("leaves nothing that blocks the next attempt, and its checkout is removed with the mission", async () => {
    const mission = newMission("kill-ws");
    const submitter = await MissionRepo.open(path.join(bus.workspace, "submitter"), mission, store);
    const base = await commitFiles(submitter, null, { "a.txt": "a\n" });
    await submitter.publish(base, []);

    const first = await spawnWorker(bus, "builder", ENV);
    await assign(
      bus,
      mission,
      makeTask({
        id: "t",
        agent: "builder",
        base,
        timeout_s: 10,
        run: ["echo partial > partial.txt && echo x >> a.txt && touch started && sleep 60"],
      }),
    );
    const deadCheckout = path.join(bus.workspace, mission, `${first.instance}-0`);
    await vi.waitFor(() => stat(path.join(deadCheckout, "started")), {
      timeout: 20_000,
      interval: 50,
    });
    first.kill("SIGKILL");
    await first.exited;
    // As if it died inside `git add -A` / `update-ref`: its locks stay behind.
    const gitDir = path.join(workerCacheRoot(bus.workspace), `${mission}.git`);
    await mkdir(path.join(gitDir, "squad-index"), { recursive: true });
    await writeFile(path.join(gitDir, "squad-index", `${first.instance}-0.lock`), "");
    await writeFile(path.join(gitDir, "refs", "squad-stale.lock"), "");

    const second = await spawnWorker(bus, "builder", ENV);
    await assign(
      bus,
      mission,
      makeTask({
        id: "t",
        agent: "builder",
        base,
        attempt: 2,
        run: ['test ! -e partial.txt && test "$(cat a.txt)" = a && echo ok > ok.txt'],
      }),
    );
    const done = await bus.events.waitFor(
      "task_completed",
      (e) => e.mission_id === mission && e.payload.result.attempt === 2,
      40_000,
    );
    expect(done.source).toBe(second.worker);
    expect(done.payload.result.changes?.files.map((f) => f.path)).toEqual(["ok.txt"]);
    expect(await readdir(path.join(gitDir, "refs"))).not.toContain("squad-stale.lock");

    await endMission(bus, mission, "mission_cancelled", "test over");
    await vi.waitFor(
      async () => {
        expect(await stat(path.join(bus.workspace, mission)).catch(() => null)).toBeNull();
        expect(await stat(gitDir).catch(() => null)).toBeNull();
      },
      { timeout: 20_000, interval: 100 },
    );
  }, 90_000);
});
