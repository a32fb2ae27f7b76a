import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { execa } from "execa";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkTree,
  walkTree,
  describeProblems,
  judgeEntry,
  linkStaysInside,
} from "../../src/workspace/tree-check.ts";

const LIMITS = { maxFileBytes: 1000, checkoutDir: "/ws/m/w-0" };

describe("judgeEntry (pure)", () => {
  it.each([
    [{ rel: ".git", kind: "dir" }, /nested git repository/],
    [{ rel: "sub/.git", kind: "file" }, /nested git repository/],
    [{ rel: "sub/.GIT", kind: "dir" }, /nested git repository/],
    [{ rel: "a/link", kind: "symlink", target: "../../etc" }, /symlink pointing out/],
    [{ rel: "link", kind: "symlink", target: "/etc/passwd" }, /symlink pointing out/],
    [{ rel: "link", kind: "symlink", target: "/ws/m/w-01/x" }, /symlink pointing out/],
    [{ rel: "link", kind: "symlink", target: "" }, /symlink pointing out/],
    [{ rel: "big.bin", kind: "file", size: 1001 }, /at or over the per-file limit of 1000 bytes/],
    [{ rel: "fifo", kind: "other" }, /FIFO/],
  ] as const)("refuses %j", (e, why) => {
    expect(judgeEntry({ size: 0, ...e }, LIMITS)?.why).toMatch(why);
  });

  it.each([
    { rel: "a.txt", kind: "file", size: 999 },
    { rel: "dir", kind: "dir", size: 4096 },
    { rel: ".github", kind: "dir", size: 0 },
    { rel: ".gitignore", kind: "file", size: 10 },
    { rel: "a/b/link", kind: "symlink", size: 0, target: "../c" },
    { rel: "link", kind: "symlink", size: 0, target: "/ws/m/w-0/x" },
    { rel: "link", kind: "symlink", size: 0, target: "dangling-but-inside" },
  ] as const)("accepts %j", (e) => {
    expect(judgeEntry(e, LIMITS)).toBeNull();
  });

  it("a relative link is judged from its own directory", () => {
    expect(linkStaysInside("a/b/l", "../../x", "/c")).toBe(true);
    expect(linkStaysInside("a/b/l", "../../../x", "/c")).toBe(false);
    expect(linkStaysInside("l", ".", "/c")).toBe(true);
  });
});

describe("checkTree", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "squad-tree-check-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds nothing in a clean tree with links inside", async () => {
    const d = path.join(dir, "clean");
    await mkdir(path.join(d, "src"), { recursive: true });
    await writeFile(path.join(d, "src", "a.ts"), "x");
    await symlink("src/a.ts", path.join(d, "alias"));
    await symlink(path.join(d, "src"), path.join(d, "abs-alias"));
    expect(await checkTree(d, { maxFileBytes: 10 })).toEqual([]);
  });

  it("finds a nested repository, an outward link, a big file and a FIFO", async () => {
    const d = path.join(dir, "bad");
    await mkdir(path.join(d, "vendor", "lib"), { recursive: true });
    await execa("git", ["init", "-q", path.join(d, "vendor", "lib")]);
    await symlink("../../etc/passwd", path.join(d, "vendor", "out"));
    await writeFile(path.join(d, "big"), "0123456789ABC");
    await execa("mkfifo", [path.join(d, "pipe")]);
    const problems = await checkTree(d, { maxFileBytes: 10 });
    expect(problems.map((p) => p.rel)).toEqual(["big", "pipe", "vendor/lib/.git", "vendor/out"]);
    expect(describeProblems(problems)).toMatch(
      /^the checkout holds what cannot be committed: big: a file of 13 bytes/,
    );
  });

  it("judges a name that is not UTF-8 like any other (a nested repository below it too)", async () => {
    const d = path.join(dir, "bytes");
    const odd = Buffer.concat([Buffer.from(path.join(d, "x")), Buffer.from([0xff, 0xfe])]);
    await mkdir(d, { recursive: true });
    await mkdir(odd);
    await mkdir(Buffer.concat([odd, Buffer.from("/.git")]));
    const walk = await walkTree(d, { maxFileBytes: 10 });
    expect(walk.problems).toHaveLength(1);
    expect(walk.problems[0]!.rel).toMatch(/^x.+\/\.git$/);
    // without a clock the snapshot is never trusted
    expect(walk.snapshot.complete).toBe(false);
  });
});
