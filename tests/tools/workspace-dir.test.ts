/**
 * WorkspaceDir on real files: the symlink checks the old realpath-based
 * confinement made still hold (links out refused, links inside followed,
 * dangling links never written through), now without a check-then-open gap.
 * The race itself is attacked in tests/security/file-tools-race.test.ts.
 */
import { execFileSync } from "node:child_process";
import {
  link,
  mkdir,
  mkdtemp,
  readdir,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ToolInputError } from "../../src/tools/tool-input-error.ts";
import { WorkspaceDir } from "../../src/tools/workspace-dir.ts";

let base: string;
let root: string;
let outside: string;
let ws: WorkspaceDir;

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-confine-")));
  root = path.join(base, "ws");
  outside = path.join(base, "secret");
  await mkdir(path.join(root, "src"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, "key.txt"), "top secret");
  await writeFile(path.join(root, "src", "a.ts"), "export {};\n");
  ws = await WorkspaceDir.open(root);
});
afterEach(async () => {
  await ws.close();
  await rm(base, { recursive: true, force: true });
});

async function relOfFile(p: string): Promise<string> {
  const f = await ws.openFile(p);
  await f.handle.close();
  return f.rel;
}

async function relOfCreated(p: string): Promise<string> {
  const f = await ws.createFile(p, null);
  await f.handle.close();
  return f.rel;
}

describe("WorkspaceDir", () => {
  it("opens relative paths inside the workspace, and creates missing ones for writes", async () => {
    expect(await relOfFile("src/a.ts")).toBe("src/a.ts");
    expect(await relOfFile("src/../src/./a.ts")).toBe("src/a.ts");
    expect(await relOfCreated("new/dir/file.txt")).toBe("new/dir/file.txt");
    expect((await stat(path.join(root, "new/dir/file.txt"))).isFile()).toBe(true);
    const top = await ws.openEntry("");
    expect(top.kind === "dir" && top.dir.rel).toBe(".");
    if (top.kind === "dir") await top.dir.handle.close();
  });

  it("refuses .. escapes and absolute paths with a clear message", async () => {
    await expect(ws.openFile("../x")).rejects.toThrow(ToolInputError);
    await expect(ws.openFile("../x")).rejects.toThrow("path '../x' leaves the workspace");
    await expect(ws.openFile("src/../../secret/key.txt")).rejects.toThrow(/leaves the workspace/);
    await expect(ws.openFile("/etc/passwd")).rejects.toThrow(/is absolute/);
    await expect(ws.openFile(path.join(root, "src/a.ts"))).rejects.toThrow(ToolInputError);
  });

  it("refuses symlinks that lead out, absolute or relative, for reads and writes", async () => {
    await symlink(outside, path.join(root, "link-dir"));
    await symlink(path.join(outside, "key.txt"), path.join(root, "link-file"));
    await symlink("../secret", path.join(root, "up"));
    await symlink("../../secret/key.txt", path.join(root, "src", "up-file"));
    await expect(ws.openFile("link-dir/key.txt")).rejects.toThrow(
      /leaves the workspace \(through a symlink\)/,
    );
    await expect(ws.openFile("link-file")).rejects.toThrow(/leaves the workspace/);
    await expect(ws.openFile("up/key.txt")).rejects.toThrow(/through a symlink/);
    await expect(ws.openFile("src/up-file")).rejects.toThrow(/through a symlink/);
    await expect(ws.openEntry("up")).rejects.toThrow(/through a symlink/);
    // Writing a new file under a symlinked directory, or through a link, is refused too.
    await expect(ws.createFile("link-dir/new.txt", null)).rejects.toThrow(/leaves the workspace/);
    await expect(ws.createFile("up/new.txt", null)).rejects.toThrow(/leaves the workspace/);
    await expect(ws.createFile("link-file", null)).rejects.toThrow(/leaves the workspace/);
    expect((await readdir(outside)).sort()).toEqual(["key.txt"]);
  });

  it("refuses a dangling symlink rather than writing through it", async () => {
    await symlink(path.join(outside, "not-yet.txt"), path.join(root, "dangling"));
    await symlink("src/not-yet.txt", path.join(root, "dangling-inside"));
    await symlink("nowhere", path.join(root, "dangling-dir"));
    await expect(ws.createFile("dangling", null)).rejects.toThrow(/leaves the workspace/);
    await expect(ws.createFile("dangling-inside", null)).rejects.toThrow(
      /symlink to a missing target/,
    );
    await expect(ws.createFile("dangling-dir/x.txt", null)).rejects.toThrow(
      /symlink to a missing target/,
    );
    expect((await readdir(path.join(root, "src"))).sort()).toEqual(["a.ts"]);
    expect((await readdir(outside)).sort()).toEqual(["key.txt"]);
  });

  it("follows symlinks that stay inside, and names the real path", async () => {
    await symlink(path.join(root, "src"), path.join(root, "alias"));
    await symlink("src/a.ts", path.join(root, "rel-alias"));
    await symlink("../src", path.join(root, "src", "loopback"));
    expect(await relOfFile("alias/a.ts")).toBe("src/a.ts");
    expect(await relOfFile("rel-alias")).toBe("src/a.ts");
    expect(await relOfFile("src/loopback/loopback/a.ts")).toBe("src/a.ts");
    expect(await relOfCreated("alias/b.ts")).toBe("src/b.ts");
    expect((await stat(path.join(root, "src/b.ts"))).isFile()).toBe(true);
  });

  it("says what is wrong: missing, a loop, a file used as a directory, not a regular file", async () => {
    await expect(ws.openFile("nope.txt")).rejects.toThrow("path 'nope.txt' does not exist");
    await symlink("b", path.join(root, "a"));
    await symlink("a", path.join(root, "b"));
    await expect(ws.openFile("a")).rejects.toThrow(/symlink loop/);
    await expect(ws.openFile("src/a.ts/x")).rejects.toThrow(/goes through a file/);
    await expect(ws.createFile("src/a.ts/x", null)).rejects.toThrow(/goes through a file/);
    await expect(ws.openFile("src")).rejects.toThrow(/is a directory/);
    await expect(ws.createFile("src", null)).rejects.toThrow(/is a directory/);
    // A FIFO would block an open for reading forever: refused at once instead.
    execFileSync("mkfifo", [path.join(root, "pipe")]);
    await expect(ws.openFile("pipe")).rejects.toThrow(/not a regular file/);
    await expect(ws.createFile("pipe", null)).rejects.toThrow(/not a regular file/);
    // Writing through a hard link would change the file's other names too.
    await link(path.join(root, "src/a.ts"), path.join(root, "twin.ts"));
    await expect(ws.createFile("twin.ts", null)).rejects.toThrow(/other hard links/);
  });

  it.runIf(process.getuid?.() === 0)(
    "hands what it creates to the owner given, and leaves existing files' owners alone",
    async () => {
      const owner = { uid: 65534, gid: 65534 };
      const f = await ws.createFile("made/deep/new.txt", owner);
      await f.handle.close();
      expect(f.created).toBe(true);
      for (const p of ["made", "made/deep", "made/deep/new.txt"]) {
        expect((await stat(path.join(root, p))).uid, p).toBe(65534);
      }
      const existing = await ws.createFile("src/a.ts", owner);
      await existing.handle.close();
      expect(existing.created).toBe(false);
      expect((await stat(path.join(root, "src/a.ts"))).uid).toBe(0);
    },
  );
});
