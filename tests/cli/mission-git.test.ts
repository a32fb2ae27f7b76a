/**
 * swarm log / diff / export / deliver / revert on a mission built like the
 * swarm builds one: a base made by the submitter from a real repository,
 * task commits made and published by a worker's cache, a rebased merge, and
 * the events the orchestrator publishes (mission_planned with the workspace,
 * task_merged, mission_completed with the head). The CLI's own cache starts
 * empty: everything comes from SQUAD_EVENTS and the bundle store.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { makeEvent, type CommitId } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { makeMissionBase } from "../../src/workspace/mission-base.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { runSwarm } from "../helpers/swarm-process.ts";
import { git, makeUserRepo, repoState } from "../workspace/git-fixtures.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";

const bus = useSwarmBus("mission-git");
let store: BundleStore;
let n = 0;

beforeAll(async () => {
  store = await openBundleStore(bus.nc, {
    maxBytes: 64 << 20,
    maxAgeS: 3600,
    bundleLimitBytes: 8 << 20,
    replicas: 1,
  });
});

const TASKS = [
  { id: "t1", agent: "builder", title: "Write one" },
  { id: "t2", agent: "builder", title: "Write two" },
  { id: "t3", agent: "tester", title: "Join them" },
];

function message(mission: string, task: string, title: string, attempt = 1): string {
  const agent = TASKS.find((t) => t.id === task)!.agent;
  return `${title}\n\nSquad-Mission: ${mission}\nSquad-Task: ${task}\nSquad-Attempt: ${attempt}\nSquad-Agent: ${agent}\n`;
}

/** The mission, its events published; `end` decides the final event. */
async function buildMission(end: "mission_completed" | "mission_failed") {
  const id = `m-20261204-1800${String(++n).padStart(2, "0")}-ab12`;
  const root = await mkdtemp(path.join(bus.workspace, "mission-"));
  const app = path.join(root, "app");
  await makeUserRepo(app, [{ "README.md": "# app\n", "a.txt": "alpha\n" }]);
  const submitter = await MissionRepo.open(path.join(root, "submitter-cache"), id, store);
  const workspace = await makeMissionBase(app, submitter);
  const worker = await MissionRepo.open(path.join(root, "worker-cache"), id, store);
  await worker.ensure(workspace.base);
  const base = workspace.base;
  // t1 and t2 in parallel from the base; t1 merges first (fast-forward), t2 is rebased onto it.
  const c1 = (await commitFiles(
    worker,
    base,
    { "a.txt": "alpha\none\n" },
    message(id, "t1", "Write one", 2),
  )) as CommitId;
  await worker.publish(c1, [base]);
  const c2 = (await commitFiles(
    worker,
    base,
    { "b.txt": "two\n" },
    message(id, "t2", "Write two"),
  )) as CommitId;
  await worker.publish(c2, [base]);
  const m2 = (await commitFiles(
    worker,
    c1,
    { "b.txt": "two\n" },
    message(id, "t2", "Write two"),
  )) as CommitId;
  await worker.publish(m2, [c1]);
  const c3 = (await commitFiles(
    worker,
    m2,
    { "c.txt": "one and two\n" },
    message(id, "t3", "Join them"),
  )) as CommitId;
  await worker.publish(c3, [m2]);

  const publish = (e: Parameters<typeof bus.publisher.publish>[0]) => bus.publisher.publish(e);
  await publish(
    makeEvent(
      "mission_planned",
      { mission_id: id, source: "orchestrator" },
      {
        title: "git mission",
        planner: null,
        workspace,
        plan: {
          waves: [
            { wave: 1, tasks: TASKS.slice(0, 2) },
            { wave: 2, tasks: [{ ...TASKS[2]!, depends_on: ["t1", "t2"] }] },
          ],
        },
      },
    ),
  );
  const merged = async (
    task: string,
    attempt: number,
    commit: CommitId,
    mergedAs: CommitId,
    onto: CommitId,
  ) =>
    publish(
      makeEvent(
        "task_merged",
        { mission_id: id, task_id: task, source: "orchestrator" },
        {
          attempt,
          commit,
          merged: mergedAs,
          onto,
          head: mergedAs,
          fast_forward: commit === mergedAs,
        },
      ),
    );
  await merged("t1", 2, c1, c1, base);
  await merged("t2", 1, c2, m2, c1);
  if (end === "mission_completed") {
    await merged("t3", 1, c3, c3, m2);
    await publish(
      makeEvent(
        "mission_completed",
        { mission_id: id, source: "orchestrator" },
        {
          summary: "done",
          tasks: { total: 3, succeeded: 3, failed: 0 },
          duration_ms: 10,
          usage: { input_tokens: 0, output_tokens: 0 },
          report: null,
          head: c3,
        },
      ),
    );
  } else {
    await publish(
      makeEvent(
        "mission_failed",
        { mission_id: id, source: "orchestrator" },
        { reason: "t3 failed", failed_tasks: [{ id: "t3", error: "boom" }], head: m2 },
      ),
    );
  }
  return { id, root, app, base, c1, m2, c3 };
}

async function swarm(args: string[]) {
  return runSwarm(args, bus.env);
}

describe("a completed mission's history from events and bundles", () => {
  it("swarm log: one commit per task, newest first, with task, agent and attempt", async () => {
    const m = await buildMission("mission_completed");
    const r = await swarm(["log", m.id, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      base: string;
      head: string;
      commits: {
        commit: string;
        task_id: string;
        attempt: number;
        agent: string;
        subject: string;
      }[];
    };
    expect(out.base).toBe(m.base);
    expect(out.head).toBe(m.c3);
    expect(out.commits.map((c) => [c.commit, c.task_id, c.attempt, c.agent, c.subject])).toEqual([
      [m.c3, "t3", 1, "tester", "Join them"],
      [m.m2, "t2", 1, "builder", "Write two"],
      [m.c1, "t1", 2, "builder", "Write one"],
    ]);
    const table = await swarm(["log", m.id]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/TASK\s+ATTEMPT\s+AGENT/);
    expect(table.stdout).toContain("Join them");
  });

  it("swarm diff: the whole mission, one task, --stat, --json", async () => {
    const m = await buildMission("mission_completed");
    const all = await swarm(["diff", m.id, "--json"]);
    expect(all.code, all.stderr).toBe(0);
    const changes = JSON.parse(all.stdout) as {
      from: string;
      to: string;
      changes: { files: { path: string; status: string; additions: number }[]; additions: number };
    };
    expect(changes.from).toBe(m.base);
    expect(changes.to).toBe(m.c3);
    expect(changes.changes.files.map((f) => [f.path, f.status])).toEqual([
      ["a.txt", "modified"],
      ["b.txt", "added"],
      ["c.txt", "added"],
    ]);
    expect(changes.changes.additions).toBe(3);
    const t2 = await swarm(["diff", m.id, "--task", "t2", "--stat"]);
    expect(t2.code, t2.stderr).toBe(0);
    expect(t2.stdout).toContain("b.txt");
    expect(t2.stdout).not.toContain("a.txt");
    const text = await swarm(["diff", m.id, "--task", "t1"]);
    expect(text.stdout).toContain("+one");
    const missing = await swarm(["diff", m.id, "--task", "nope"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("tasks merged: t1, t2, t3");
  });

  it("swarm export, then swarm revert on the export (checked out: its working tree follows)", async () => {
    const m = await buildMission("mission_completed");
    const dir = path.join(m.root, "export");
    const r = await swarm(["export", m.id, dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(path.join(dir, "c.txt"), "utf8")).toBe("one and two\n");
    expect(await git(dir, "rev-parse", "HEAD")).toBe(m.c3);
    const rv = await swarm(["revert", m.id, "t1", "--repo", dir, "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    const out = JSON.parse(rv.stdout) as { commit: string; reverts: string; checked_out: boolean };
    expect(out).toMatchObject({ reverts: m.c1, checked_out: true });
    expect(await git(dir, "rev-parse", "HEAD")).toBe(out.commit);
    expect(await readFile(path.join(dir, "a.txt"), "utf8")).toBe("alpha\n");
    expect(await readFile(path.join(dir, "b.txt"), "utf8")).toBe("two\n");
    expect(await git(dir, "log", "-1", "--format=%s%n%(trailers:only)")).toContain(
      `Squad-Reverts-Task: t1`,
    );
  });

  it("swarm deliver into the workspace repository, then swarm revert there; the user's checkout untouched", async () => {
    const m = await buildMission("mission_completed");
    await writeFile(path.join(m.app, "notes.txt"), "the user's own work in progress\n");
    const before = await repoState(m.app);
    const d = await swarm(["deliver", m.id]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(`as branch squad/${m.id}`);
    expect(await git(m.app, "rev-parse", `squad/${m.id}`)).toBe(m.c3);
    expect(await repoState(m.app)).toEqual(before);
    // Again: already there, nothing changed.
    const again = await swarm(["deliver", m.id]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already");
    // Another branch of that name is never overwritten.
    await git(m.app, "branch", "-f", `squad/${m.id}`, m.base);
    const clash = await swarm(["deliver", m.id]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain("already exists");
    expect(await git(m.app, "rev-parse", `squad/${m.id}`)).toBe(m.base);
    await git(m.app, "branch", "-f", `squad/${m.id}`, m.c3);

    const rv = await swarm(["revert", m.id, "t2"]);
    expect(rv.code, rv.stderr).toBe(0);
    const tip = await git(m.app, "rev-parse", `squad/${m.id}`);
    expect(await git(m.app, "rev-parse", `${tip}^`)).toBe(m.c3);
    expect(await git(m.app, "ls-tree", "--name-only", tip)).not.toContain("b.txt");
    expect(await git(m.app, "show", `${tip}:c.txt`)).toBe("one and two");
    expect(await repoState(m.app)).toEqual(before);
    await rm(path.join(m.app, "notes.txt"));
  });

  it("a failed mission delivers nothing and says where its partial head is; --partial writes it", async () => {
    const m = await buildMission("mission_failed");
    const d = await swarm(["deliver", m.id]);
    expect(d.code).toBe(1);
    expect(d.stdout).toContain(m.m2);
    expect(d.stdout).toContain("--partial");
    await expect(git(m.app, "rev-parse", "--verify", "-q", `squad/${m.id}`)).rejects.toThrow();
    const exp = await swarm(["export", m.id, path.join(m.root, "x")]);
    expect(exp.code).toBe(2);
    expect(exp.stderr).toContain("--partial");
    const partial = await swarm(["deliver", m.id, "--partial", "--json"]);
    expect(partial.code, partial.stderr).toBe(0);
    expect(JSON.parse(partial.stdout).delivered[0].commit).toBe(m.m2);
    expect(await git(m.app, "rev-parse", `squad/${m.id}`)).toBe(m.m2);
  });
});

describe("the mission history commands' help", () => {
  it.each(["diff", "log", "export", "deliver", "revert"])(
    "swarm %s --help has examples and --json",
    async (cmd) => {
      const r = await swarm([cmd, "--help"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("Examples:");
      expect(r.stdout).toContain(`$ swarm ${cmd} m-`);
      expect(r.stdout).toContain("--json");
    },
  );

  it("a mission id that is not one, and a mission without events: exit 2", async () => {
    expect((await swarm(["log", "not an id"])).code).toBe(2);
    const none = await swarm(["diff", "m-20990101-000000-0000"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no events of mission");
  });
});
