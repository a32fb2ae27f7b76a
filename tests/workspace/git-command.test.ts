import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitError, gitSucceeds, runGit, runGitRaw } from "../../src/workspace/git-command.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "squad-git-command-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("runGit", () => {
  it("ignores the host's git configuration and GIT_* environment", async () => {
    const home = path.join(dir, "home");
    await runGit(["init", "-q", "--bare", path.join(dir, "r.git")]);
    const gitDir = path.join(dir, "r.git");
    await writeFile(path.join(dir, "global"), "[user]\n\tname = Host User\n[alias]\n\tx = log\n");
    const saved = { ...process.env };
    try {
      Object.assign(process.env, {
        HOME: home,
        GIT_CONFIG_GLOBAL: path.join(dir, "global"),
        GIT_DIR: "/nonexistent",
        GIT_AUTHOR_NAME: "Leaked",
      });
      await expect(runGit(["config", "user.name"], { gitDir })).rejects.toBeInstanceOf(GitError);
      expect(await runGit(["config", "core.hooksPath"], { gitDir })).toBe("/dev/null");
      expect(await runGit(["rev-parse", "--git-dir"], { gitDir })).toBe(gitDir);
    } finally {
      process.env = saved;
    }
  });

  it("feeds stdin, passes env, keeps -z output raw", async () => {
    const gitDir = path.join(dir, "r.git");
    const tree = await runGit(["mktree"], { gitDir, input: "" });
    const commit = await runGit(["commit-tree", tree], {
      gitDir,
      input: "subject\n\nSquad-Task: t1\n",
      env: {
        GIT_AUTHOR_NAME: "a/b",
        GIT_AUTHOR_EMAIL: "a@squad.local",
        GIT_COMMITTER_NAME: "a/b",
        GIT_COMMITTER_EMAIL: "a@squad.local",
      },
    });
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect(
      await runGit(["log", "-1", "--format=%an|%s|%(trailers:only,unfold)", commit], { gitDir }),
    ).toBe("a/b|subject|Squad-Task: t1\n");
    expect(await runGitRaw(["ls-tree", "-z", tree], { gitDir })).toBe("");
    expect(await gitSucceeds(["cat-file", "-e", `${commit}^{commit}`], { gitDir })).toBe(true);
    expect(await gitSucceeds(["cat-file", "-e", `${"0".repeat(40)}^{commit}`], { gitDir })).toBe(
      false,
    );
  });

  it("a failure names the command and git's verdict", async () => {
    const err = await runGit(["rev-parse", "--verify", "nope"], {
      gitDir: path.join(dir, "r.git"),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).message).toMatch(
      /^git rev-parse --verify nope failed \(exit 128\): fatal:/,
    );
  });
});
