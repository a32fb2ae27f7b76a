/**
 * The README's git demo, as a person runs it: make the demo repository with
 * mission-briefs/demo-git-setup.sh, deploy mission-briefs/demo-git.md, and
 * find a branch squad/<mission> in the repository with one commit per task
 * (the two parallel ones, then the one that needs both), while the
 * repository's checkout stayed as it was. Needs every part of git
 * workspaces (base, worker checkouts and commits, the merge queue, delivery).
 */
import { execa } from "execa";
import { chmod, copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { REPO_ROOT, killAllSwarms, runSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { git, repoState } from "../workspace/git-fixtures.ts";

let nats: NatsServerHandle;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-demo-git-"));
  // The workspace root below it must be reachable by the sandbox user.
  await chmod(dir, 0o711);
});
afterAll(async () => {
  await killAllSwarms();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
});

describe("the git workspace demo", () => {
  it(
    "ends with branch squad/<mission>: one commit per task, the checkout untouched",
    { timeout: 240_000 },
    async () => {
      // The brief beside its repository, as in a checkout (mission-briefs/demo-git-repo).
      const brief = path.join(dir, "demo-git.md");
      await copyFile(path.join(REPO_ROOT, "mission-briefs/demo-git.md"), brief);
      const repo = path.join(dir, "demo-git-repo");
      await execa(path.join(REPO_ROOT, "mission-briefs/demo-git-setup.sh"), [repo]);
      const before = await repoState(repo);

      const ws = path.join(dir, "ws");
      const env = swarmEnv(nats.url, ws);
      const r = await runSwarm(["deploy", brief, "--replicas", "2", "--json"], env);
      expect(r.code, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout.trim()) as {
        mission_id: string;
        status: string;
        tasks: unknown;
      };
      expect(summary).toMatchObject({
        status: "completed",
        tasks: { total: 3, succeeded: 3, failed: 0 },
      });
      const branch = `squad/${summary.mission_id}`;
      expect(r.stderr).toContain(`as branch ${branch}`);

      expect(await repoState(repo)).toEqual(before);
      const log = (
        await git(
          repo,
          "log",
          "--format=%(trailers:key=Squad-Task,valueonly,separator=)|%s",
          branch,
        )
      )
        .split("\n")
        .filter(Boolean);
      expect(log).toHaveLength(4);
      expect(log[0]).toBe("summary|Summarize both changes");
      expect(log.slice(1, 3).sort()).toEqual([
        "greeting|Write the greeting",
        "numbers|Count to five",
      ]);
      expect(log[3]).toBe("|Demo repository");
      expect(await git(repo, "show", `${branch}:SUMMARY.md`)).toContain("numbers: 5");

      // The same history through the CLI, from the events and the bundle store.
      const swarmLog = await runSwarm(["log", summary.mission_id, "--json"], env);
      expect(swarmLog.code, swarmLog.stderr).toBe(0);
      const commits = (JSON.parse(swarmLog.stdout) as { commits: { task_id: string }[] }).commits;
      expect(commits.map((c) => c.task_id).sort()).toEqual(["greeting", "numbers", "summary"]);
    },
  );
});
