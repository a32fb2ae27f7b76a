import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import type { CommitId } from "../../src/schema/index.ts";
import { revertTask } from "../../src/workspace/mission-revert.ts";
import { redactCredentials } from "../../src/workspace/user-git.ts";
import { git, makeUserRepo, repoState } from "./git-fixtures.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "squad-revert-test-"));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A repository on main with branch squad/m-1: base, t1 (a.txt), t2 (a.txt again), t3 (b.txt). */
async function delivered(name: string) {
  const dir = path.join(root, name);
  const [base] = await makeUserRepo(dir, [{ "a.txt": "one\n" }]);
  await git(dir, "checkout", "-q", "-b", "squad/m-1");
  const commit = async (file: string, content: string, subject: string) => {
    await writeFile(path.join(dir, file), content);
    await git(dir, "commit", "-q", "-am", subject);
    if (file === "b.txt") await git(dir, "add", "b.txt");
    return (await git(dir, "rev-parse", "HEAD")) as CommitId;
  };
  const t1 = await commit("a.txt", "one\ntwo\n", "t1");
  const t2 = await commit("a.txt", "one\nTWO\n", "t2");
  await writeFile(path.join(dir, "b.txt"), "bee\n");
  await git(dir, "add", "b.txt");
  await git(dir, "commit", "-q", "-m", "t3");
  const t3 = (await git(dir, "rev-parse", "HEAD")) as CommitId;
  await git(dir, "checkout", "-q", "main");
  return { dir, base: base as CommitId, t1, t2, t3 };
}

async function refusal(p: Promise<unknown>): Promise<BadInputError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadInputError);
  return err as BadInputError;
}

describe("revertTask", () => {
  it("reverts on the branch only: a new tip on top, the checkout (main) untouched", async () => {
    const r = await delivered("clean");
    await writeFile(path.join(r.dir, "wip.txt"), "the user's\n");
    const before = await repoState(r.dir);
    const out = await revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t3", merged: r.t3 });
    expect(out).toMatchObject({ branch: "squad/m-1", reverts: r.t3, checkedOut: false });
    expect(await git(r.dir, "rev-parse", "squad/m-1")).toBe(out.commit);
    expect(await git(r.dir, "rev-parse", "squad/m-1^")).toBe(r.t3);
    expect(await git(r.dir, "ls-tree", "--name-only", "squad/m-1")).toBe("a.txt");
    expect(await git(r.dir, "log", "-1", "--format=%s%n%b", "squad/m-1")).toContain(
      "Squad-Reverts-Task: t3",
    );
    expect(await repoState(r.dir)).toEqual(before);
    // The temporary worktree is gone, metadata included.
    expect((await git(r.dir, "worktree", "list")).split("\n")).toHaveLength(1);
  });

  it("a revert that conflicts with a later task changes nothing and names the file", async () => {
    const r = await delivered("conflict");
    const before = await repoState(r.dir);
    const err = await refusal(
      revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t1", merged: r.t1 }),
    );
    expect(err.message).toContain("conflicts with later changes in a.txt");
    expect(await git(r.dir, "rev-parse", "squad/m-1")).toBe(r.t3);
    expect(await repoState(r.dir)).toEqual(before);
  });

  it("on the checked-out branch: in its working tree, which must be clean", async () => {
    const r = await delivered("checked-out");
    await git(r.dir, "checkout", "-q", "squad/m-1");
    await writeFile(path.join(r.dir, "a.txt"), "dirty\n");
    const dirty = await refusal(
      revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t3", merged: r.t3 }),
    );
    expect(dirty.message).toContain("uncommitted changes (a.txt)");
    await git(r.dir, "checkout", "-q", "--", "a.txt");
    const out = await revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t3", merged: r.t3 });
    expect(out.checkedOut).toBe(true);
    expect(await git(r.dir, "rev-parse", "HEAD")).toBe(out.commit);
    await expect(readFile(path.join(r.dir, "b.txt"))).rejects.toThrow();
  });

  it("refuses without the delivered branch, or a commit not on it", async () => {
    const r = await delivered("missing");
    await git(r.dir, "branch", "-q", "-D", "squad/m-1");
    expect(
      (await refusal(revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t1", merged: r.t1 })))
        .message,
    ).toContain("has no branch squad/m-1");
    await git(r.dir, "branch", "-q", "squad/m-1", r.base);
    expect(
      (await refusal(revertTask({ repoDir: r.dir, missionId: "m-1", taskId: "t1", merged: r.t1 })))
        .message,
    ).toContain("is not on squad/m-1");
    const plain = path.join(root, "plain");
    await rm(plain, { recursive: true, force: true });
    await makeUserRepo(path.join(plain, "x"));
    expect(
      (await refusal(revertTask({ repoDir: plain, missionId: "m-1", taskId: "t1", merged: r.t1 })))
        .message,
    ).toContain("swarm export m-1 DIR");
  });
});

describe("redactCredentials", () => {
  it("removes the userinfo of any URL", () => {
    expect(redactCredentials("To https://ada:s3cr3t@host/r.git and ssh://git@h/x")).toBe(
      "To https://***@host/r.git and ssh://***@h/x",
    );
    expect(redactCredentials("origin")).toBe("origin");
  });
});
