import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitError, runGit } from "../../src/workspace/git-command.ts";
import { GitPipe, readLine } from "../../src/workspace/git-pipe.ts";
import { mergeTrees } from "../../src/workspace/merge-tree.ts";
import { RepoPipes } from "../../src/workspace/repo-pipes.ts";
import { AUTHOR_ENV } from "./repo-fixtures.ts";

let root: string;
let gitDir: string;
let commits: string[];

/** A bare repository with a line of commits, each adding one file (c1 and c2 also edit shared.txt). */
async function makeRepo(dir: string): Promise<string[]> {
  await runGit(["init", "-q", "--bare", dir]);
  const out: string[] = [];
  let parent: string | null = null;
  for (let i = 0; i < 3; i++) {
    const blob = await runGit(["hash-object", "-w", "--stdin"], { gitDir: dir, input: `${i}\n` });
    const shared = await runGit(["hash-object", "-w", "--stdin"], {
      gitDir: dir,
      input: `shared ${i}\n`,
    });
    const tree = await runGit(["mktree"], {
      gitDir: dir,
      input: `100644 blob ${blob}\tf${i}.txt\n100644 blob ${shared}\tshared.txt\n`,
    });
    const args: string[] = ["commit-tree", tree, ...(parent ? ["-p", parent] : [])];
    const c: string = await runGit(args, { gitDir: dir, input: `c${i}\n`, env: AUTHOR_ENV });
    out.push(c);
    parent = c;
  }
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "squad-git-pipe-"));
  gitDir = path.join(root, "r.git");
  commits = await makeRepo(gitDir);
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("long-lived git processes (real git)", () => {
  it("answers many requests in flight at once, each with its own answer", async () => {
    const pipes = new RepoPipes(gitDir);
    try {
      const names = [...commits, `${commits[2]}^`, "0".repeat(40), `${commits[0]}^`];
      const infos = await Promise.all(names.map((n) => pipes.info(n)));
      expect(infos.slice(0, 3).map((i) => i?.oid)).toEqual(commits);
      expect(infos[3]?.oid).toBe(commits[1]);
      expect(infos[4]).toBeNull();
      expect(infos[5]).toBeNull();
      const c = await pipes.contents(commits[1]!);
      expect(c?.info.type).toBe("commit");
      expect(c?.data.toString()).toContain(`parent ${commits[0]}\n`);
      expect(c?.data.toString().endsWith("c1\n")).toBe(true);
    } finally {
      await pipes.close();
    }
  });

  it("moves refs in one transaction; a refused update fails and the next request starts a new git", async () => {
    const pipes = new RepoPipes(gitDir);
    try {
      await pipes.updateRefs([
        { ref: "refs/squad/a/1", commit: commits[0]! },
        { ref: "refs/heads/squad/m", commit: commits[2]! },
      ]);
      expect(await runGit(["rev-parse", "refs/squad/a/1", "refs/heads/squad/m"], { gitDir })).toBe(
        `${commits[0]}\n${commits[2]}`,
      );
      // An object that does not exist: git refuses the whole transaction and exits.
      const err = await pipes
        .updateRefs([
          { ref: "refs/squad/b/1", commit: commits[1]! },
          { ref: "refs/squad/c/1", commit: "1".repeat(40) },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitError);
      expect(await runGit(["for-each-ref", "refs/squad/b"], { gitDir })).toBe("");
      await pipes.updateRefs([{ ref: "refs/squad/b/1", commit: commits[1]! }]);
      expect(await runGit(["rev-parse", "refs/squad/b/1"], { gitDir })).toBe(commits[1]);
    } finally {
      await pipes.close();
    }
  });

  it("writes a commit object as commit-tree would, and merges as a one-off merge-tree does", async () => {
    const pipes = new RepoPipes(gitDir);
    try {
      const tree = await runGit(["rev-parse", `${commits[1]}^{tree}`], { gitDir });
      const text = `tree ${tree}\nparent ${commits[0]}\nauthor tester <tester@squad.local> 1700000000 +0000\ncommitter tester <tester@squad.local> 1700000000 +0000\n\nmsg\n`;
      const made = await pipes.writeCommit(text);
      const viaGit = await runGit(["commit-tree", tree, "-p", commits[0]!], {
        gitDir,
        input: "msg\n",
        env: {
          ...AUTHOR_ENV,
          GIT_AUTHOR_DATE: "@1700000000 +0000",
          GIT_COMMITTER_DATE: "@1700000000 +0000",
        },
      });
      expect(made).toBe(viaGit);
      await expect(pipes.writeCommit("tree nonsense\n\nx\n")).rejects.toThrow();

      // A commit on c0 editing shared.txt (as c1 and c2 do), and one that does not.
      const blob = await runGit(["hash-object", "-w", "--stdin"], { gitDir, input: "side\n" });
      const base0 = await runGit(["ls-tree", commits[0]!], { gitDir });
      const sideTree = await runGit(["mktree"], {
        gitDir,
        input: base0.replace(/blob [0-9a-f]{40}\tshared\.txt/, `blob ${blob}\tshared.txt`) + "\n",
      });
      const side = await runGit(["commit-tree", sideTree, "-p", commits[0]!], {
        gitDir,
        input: "side\n",
        env: AUTHOR_ENV,
      });
      const fresh = await runGit(["commit-tree", tree, "-p", commits[0]!], {
        gitDir,
        input: "fresh\n",
        env: AUTHOR_ENV,
      });
      // Conflicting, clean, conflicting again: each answer read whole, in order, as the one-off says.
      const pairs: Array<[string, string]> = [
        [commits[2]!, side],
        [commits[0]!, fresh],
        [commits[1]!, side],
      ];
      const answers = await Promise.all(pairs.map(([o, t]) => pipes.mergeTrees(o, t)));
      for (const [i, [o, t]] of pairs.entries()) {
        expect(answers[i]).toEqual(await mergeTrees(gitDir, o, t));
      }
      expect(answers.map((a) => a.clean)).toEqual([false, true, false]);
      expect(answers[0]!.files).toEqual(["shared.txt"]);
      expect(answers[0]!.conflicts[0]).toContain("Merge conflict in shared.txt");
    } finally {
      await pipes.close();
    }
  });

  it("a git that dies fails what waits for it; after close() nothing more is asked", async () => {
    // A command cat-file does not know ends it at once.
    const pipe = new GitPipe(["cat-file", "--batch-command"], { gitDir });
    await expect(pipe.request("nonsense-command x\n", readLine)).rejects.toBeInstanceOf(GitError);
    const again = await pipe.request(`info ${commits[0]}\n`, readLine);
    expect(again).toBe(`${commits[0]} commit ${again.split(" ")[2]}`);
    await pipe.close();
    await expect(pipe.request(`info ${commits[0]}\n`, readLine)).rejects.toThrow(/closed/);
  });

  it("ends by itself when idle and starts again on the next request", async () => {
    const pipe = new GitPipe(["cat-file", "--batch-command"], { gitDir }, 1);
    for (let i = 0; i < 5; i++) {
      // Each request may find the last git gone (idle after 1 ms): it starts a new one.
      expect(await pipe.request(`info ${commits[i % 3]}\n`, readLine)).toMatch(/ commit /);
      await new Promise((r) => setTimeout(r, 5));
    }
    await pipe.close();
  });
});
