/**
 * `swarm submit --wait` on a brief whose workspace is a git repository with a
 * remote: the mission runs on a real orchestrator and worker, and when it
 * completes its head is delivered as branch squad/<mission> into the
 * repository and pushed to the remote the front matter names (a bare
 * repository served by git daemon on 127.0.0.1). A failed mission delivers
 * nothing and says where its partial head is.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { runSwarm, spawnSwarm } from "../helpers/swarm-process.ts";
import { git, makeUserRepo, repoState } from "../workspace/git-fixtures.ts";
import { startGitDaemon, type GitServer } from "../workspace/git-servers.ts";

const bus = useSwarmBus("submit-deliver");
let daemon: GitServer;
let remoteBase: string;

beforeAll(async () => {
  const orchestrator = spawnSwarm(["orchestrator"], bus.env);
  const worker = spawnSwarm(["worker", "--agent", "builder"], bus.env);
  remoteBase = path.join(bus.workspace, "remotes");
  await mkdir(path.join(remoteBase, "shared.git"), { recursive: true });
  await git(path.join(remoteBase, "shared.git"), "init", "-q", "--bare");
  daemon = await startGitDaemon(remoteBase, "shared.git");
  await orchestrator.waitFor(/orchestrator ready/);
  await worker.waitFor(/worker replica online/);
});

afterAll(async () => {
  await daemon?.stop();
});

function brief(tasks: string, extra = ""): string {
  return `---
title: Change the repository
agents: [builder]
workspace: ./app
${extra}plan:
  waves:
    - wave: 1
      tasks:
${tasks}
---
# Change the repository
`;
}

describe("swarm submit --wait delivers", () => {
  it("a completed mission: branch squad/<mission> in the repository, pushed to deliver.push", async () => {
    const dir = path.join(bus.workspace, "ok");
    const app = path.join(dir, "app");
    await makeUserRepo(app, [{ "README.md": "# app\n" }]);
    await git(app, "remote", "add", "origin", daemon.url("shared.git"));
    const file = path.join(dir, "brief.md");
    await writeFile(
      file,
      brief(
        `        - id: write
          agent: builder
          title: Write the file
          run: ["echo written > out.txt"]
          verify: ["grep -q written out.txt"]`,
        "deliver: { push: origin }\n",
      ),
    );
    const before = await repoState(app);
    const r = await runSwarm(["submit", file, "--wait"], bus.env);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const missionId = r.stdout.split("\n")[0]!;
    const branch = `squad/${missionId}`;
    expect(r.stdout).toContain(`as branch ${branch} to ${app}`);
    expect(r.stdout).toContain(`as branch ${branch} to origin`);
    expect(await repoState(app)).toEqual(before);
    const head = await git(app, "rev-parse", branch);
    expect(await git(app, "show", `${branch}:out.txt`)).toBe("written");
    expect(
      await git(path.join(remoteBase, "shared.git"), "rev-parse", `refs/heads/${branch}`),
    ).toBe(head);
  });

  it("a failed mission: nothing delivered, its partial head named", async () => {
    const dir = path.join(bus.workspace, "failed");
    const app = path.join(dir, "app");
    await makeUserRepo(app, [{ "README.md": "# app\n" }]);
    const file = path.join(dir, "brief.md");
    await writeFile(
      file,
      brief(`        - id: broken
          agent: builder
          title: Fail
          max_attempts: 1
          run: ["exit 3"]`),
    );
    const r = await runSwarm(["submit", file, "--wait"], bus.env);
    expect(r.code).toBe(1);
    const missionId = r.stdout.split("\n")[0]!;
    expect(r.stdout).toContain(`mission ${missionId} failed: nothing delivered`);
    expect(r.stdout).toContain("--partial");
    expect(await git(app, "branch", "--list", "squad/*")).toBe("");
  });
});
