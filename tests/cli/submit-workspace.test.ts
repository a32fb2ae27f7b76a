/**
 * `swarm submit` makes the mission's base from the brief's workspace and
 * uploads it before the submission: mission_submitted.workspace names it,
 * and the bundle store has it. What can not be a base is refused (exit 2)
 * before anything is sent.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openJetStreamManager } from "../../src/bus/index.ts";
import { SquadEvent, STREAMS, type CommitId } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { runSwarm } from "../helpers/swarm-process.ts";
import { git, makeUserRepo } from "../workspace/git-fixtures.ts";

const bus = useSwarmBus("submit-workspace");
let store: BundleStore;

beforeAll(async () => {
  store = await openBundleStore(bus.nc, {
    maxBytes: 64 << 20,
    maxAgeS: 3600,
    bundleLimitBytes: 8 << 20,
    replicas: 1,
  });
});

const brief = (workspace: string | null) => `---
title: Work on a repository
agents: [builder]
${workspace ? `workspace: ${workspace}\n` : ""}plan:
  waves:
    - wave: 1
      tasks:
        - id: t
          agent: builder
          title: Touch it
          run: ["touch done.txt"]
---
# Work on a repository
`;

async function submittedWorkspace(missionId: string): Promise<unknown> {
  const jsm = await openJetStreamManager(bus.nc, { check: false });
  const info = await jsm.streams.info(STREAMS.missions);
  for (let seq = info.state.last_seq; seq >= info.state.first_seq && seq > 0; seq--) {
    const m = await jsm.streams.getMessage(STREAMS.missions, { seq }).catch(() => null);
    if (!m) continue;
    const e = SquadEvent.parse(m.json());
    if (e.mission_id === missionId) return (e.payload as { workspace?: unknown }).workspace;
  }
  throw new Error(`no mission_submitted of ${missionId}`);
}

async function setup(name: string, workspace: string | null) {
  const dir = await mkdtemp(path.join(bus.workspace, `${name}-`));
  const file = path.join(dir, "brief.md");
  await writeFile(file, brief(workspace));
  return { dir, file };
}

describe("swarm submit and the mission's base", () => {
  it("a git repository: its HEAD is the base, uploaded, named in mission_submitted", async () => {
    const { dir, file } = await setup("git", "./app");
    const [, head] = await makeUserRepo(path.join(dir, "app"), [
      { "a.txt": "1\n" },
      { "a.txt": "2\n" },
    ]);
    const r = await runSwarm(["submit", file], bus.env);
    expect(r.code, r.stderr).toBe(0);
    const missionId = r.stdout.trim();
    expect(await submittedWorkspace(missionId)).toEqual({
      base: head,
      source: "git",
      path: path.join(dir, "app"),
      branch: "main",
    });
    expect(await store.has(missionId, head as CommitId)).toBe(true);
  });

  it("no workspace: an empty base, uploaded", async () => {
    const { file } = await setup("none", null);
    const r = await runSwarm(["submit", file], bus.env);
    expect(r.code, r.stderr).toBe(0);
    const ws = (await submittedWorkspace(r.stdout.trim())) as { base: CommitId; source: string };
    expect(ws.source).toBe("empty");
    expect(await store.has(r.stdout.trim(), ws.base)).toBe(true);
  });

  it("refuses a dirty repository, a bare one and --push without --wait, sending nothing", async () => {
    const jsm = await openJetStreamManager(bus.nc, { check: false });
    const sent = async () => (await jsm.streams.info(STREAMS.missions)).state.messages;
    const before = await sent();

    const dirty = await setup("dirty", "./app");
    await makeUserRepo(path.join(dirty.dir, "app"));
    await writeFile(path.join(dirty.dir, "app/wip.txt"), "not committed\n");
    const r1 = await runSwarm(["submit", dirty.file], bus.env);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain("wip.txt");
    expect(r1.stderr).toContain("Commit them");
    expect(r1.stderr).toContain("stash them");

    const bare = await setup("bare", "./app.git");
    await mkdir(path.join(bare.dir, "app.git"));
    await git(path.join(bare.dir, "app.git"), "init", "-q", "--bare");
    const r2 = await runSwarm(["submit", bare.file], bus.env);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("bare git repository");

    const push = await setup("push", null);
    const r3 = await runSwarm(["submit", push.file, "--push", "origin"], bus.env);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain("--wait");

    expect(await sent()).toBe(before);
  });
});
