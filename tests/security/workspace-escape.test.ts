/**
 * Attacks on git workspaces from inside a task: a real worker replica on a
 * real nats-server, its commands in the real sandbox (bwrap, as the
 * unprivileged sandbox user when the worker is root). A task that makes a
 * nested repository, a submodule's gitfile, a symlink out of its checkout
 * or a file at the size limit fails, final, with a message that says what,
 * and nothing of it reaches a commit; the cache repository is out of its
 * sight and reach; a retry never sees what a failed attempt left.
 */
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { silentLogger } from "../../src/log.ts";
import type { TaskResult } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import type { RosterAgent } from "../../src/workers/roster.ts";
import { workerCacheRoot } from "../../src/workers/worker-workspaces.ts";
import { startWorkerReplica, type WorkerReplica } from "../../src/workers/worker-replica.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";
import { assign, makeTask, newMission, startBus, type Bus } from "../workers/worker-harness.ts";

const root = process.getuid?.() === 0;
let bus: Bus;
let store: BundleStore;
let scratch: string;
let workspaceRoot: string;
let replica: WorkerReplica;
let nc: NatsConnection;

const AGENT: RosterAgent = {
  name: "intruder",
  description: "tries to get out",
  persona: "You try things.",
  tools: ["run_shell"],
  sandbox: "bwrap",
  limits: { file_mb: 1 },
};

beforeAll(async () => {
  bus = await startBus();
  scratch = await mkdtemp(path.join(tmpdir(), "squad-ws-escape-"));
  await chmod(scratch, 0o711);
  workspaceRoot = path.join(scratch, "workspace");
  store = await openBundleStore(bus.nc, {
    maxBytes: 256 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 64 * 1024 * 1024,
    replicas: 1,
  });
  nc = await connectBus({ servers: bus.server.url, name: "intruder" });
  replica = await startWorkerReplica({
    nc,
    agent: AGENT,
    instance: "w1",
    concurrency: 1,
    workspaceRoot,
    defaultModel: "ollama:none",
    version: "test",
    log: silentLogger,
    heartbeatMs: 60_000,
    env: { PATH: process.env.PATH },
  });
}, 60_000);

afterAll(async () => {
  await replica?.stop("test over");
  await nc?.close();
  await bus?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function missionWithBase(label: string) {
  const mission = newMission(label);
  const repo = await MissionRepo.open(path.join(scratch, "submitter"), mission, store);
  const base = await commitFiles(repo, null, { "README.md": "hello\n", "src/a.txt": "a\n" });
  await repo.publish(base, []);
  return { mission, base };
}

async function run(
  label: string,
  commands: string[],
  attempt = 1,
  m?: { mission: string; base: string },
) {
  const { mission, base } = m ?? (await missionWithBase(label));
  await assign(
    bus,
    mission,
    makeTask({ id: "t", agent: AGENT.name, base, run: commands, attempt }),
  );
  const e = await bus.events
    .waitFor(
      attempt === 1 ? "task_failed" : "task_completed",
      (x) => x.mission_id === mission && x.task_id === "t" && x.payload.result.attempt === attempt,
      30_000,
    )
    .catch(async () => bus.events.result(mission, "t", 1000));
  return { mission, base, result: e.payload.result as TaskResult };
}

function refused(r: TaskResult, what: RegExp) {
  expect(r.status).toBe("failed");
  expect(r.error).toMatch(/the checkout holds what cannot be committed/);
  expect(r.error).toMatch(what);
  expect(r.retryable).toBe(false);
  // Nothing of it reaches a commit: no changes, no kept ref.
  expect(r.changes).toBeUndefined();
}

describe("a task attacking its checkout", () => {
  it("git init (and committing on its own) in the checkout", async () => {
    const { result } = await run("git-init", [
      "git init -q . && git add -A && git -c user.name=x -c user.email=x@x commit -qm mine",
    ]);
    refused(result, /^.*\.git: a nested git repository/m);
  });

  it("a nested repository, and a submodule's gitfile", async () => {
    const { result } = await run("nested", [
      "mkdir -p vendor/lib && git init -q vendor/lib && echo 'gitdir: ../../elsewhere' > src/.git",
    ]);
    refused(result, /src\/\.git: a nested git repository/);
    expect(result.error).toMatch(/vendor\/lib\/\.git/);
  });

  it("a symlink pointing out of the checkout, absolute or by ..", async () => {
    const { result } = await run("symlink", ["ln -s /etc/passwd leak && ln -s ../../.. src/up"]);
    refused(result, /leak: a symlink pointing out of the checkout/);
    expect(result.error).toMatch(/src\/up: a symlink pointing out/);
  });

  it("a file over the size limit", async () => {
    const { result } = await run("big", ["head -c 3000000 /dev/zero > big.bin"]);
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/file size|file_mb|per-file limit/);
    expect(result.error).toMatch(
      /big\.bin: a file of 1048576 bytes, at or over the per-file limit/,
    );
    expect(result.changes).toBeUndefined();
  });

  it("cannot see or write the cache repository", async () => {
    const { mission, base } = await missionWithBase("cache");
    const gitDir = path.join(workerCacheRoot(workspaceRoot), `${mission}.git`);
    const probe = [
      "echo ==ls; ls -la .. ../.. 2>&1",
      "echo ==find; find / -xdev -name '*.git' 2>/dev/null; find / -name '.squad' 2>/dev/null",
      `echo ==write; echo evil > ${gitDir}/HEAD 2>&1; mkdir -p ${gitDir}/refs/heads 2>&1; echo ==id; id -u`,
      "exit 1",
    ].join("; ");
    await assign(bus, mission, makeTask({ id: "t", agent: AGENT.name, base, run: [probe] }));
    const r = (await bus.events.result(mission, "t", 30_000)).payload.result;
    const out = r.steps[0]!.output;
    // What it could list and find (the write's own error message names the path it tried).
    const seen = out.slice(0, out.indexOf("==write"));
    expect(seen).toContain("==find");
    expect(seen).not.toContain(`${mission}.git`);
    expect(seen).not.toContain(".squad");
    if (root) expect(out).toMatch(/==id\n65534/);
    // The host's cache is as git left it.
    expect((await readFile(path.join(gitDir, "HEAD"), "utf8")).trim()).toBe("ref: refs/heads/main");
    expect(r.changes).toBeUndefined();
  });

  it("a retry never sees what the failed attempt left (a nested repo, a half-written file)", async () => {
    const m = await missionWithBase("retry");
    const first = await run(
      "retry",
      ["echo half > half.txt; echo x >> src/a.txt; git init -q .; exit 1"],
      1,
      m,
    );
    refused(first.result, /\.git: a nested git repository/);
    const second = await run(
      "retry",
      [
        'test ! -e .git && test ! -e half.txt && test "$(cat src/a.txt)" = a && echo done > done.txt',
      ],
      2,
      m,
    );
    expect(second.result.status, second.result.error).toBe("succeeded");
    expect(second.result.changes!.files.map((f) => f.path)).toEqual(["done.txt"]);
  });
});
