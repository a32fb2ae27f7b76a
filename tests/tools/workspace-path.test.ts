import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ToolInputError } from "../../src/tools/tool-input-error.ts";
import { isInside, resolveInWorkspace } from "../../src/tools/workspace-path.ts";

let base: string;
let root: string;
let outside: string;

beforeEach(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-confine-")));
  root = path.join(base, "ws");
  outside = path.join(base, "secret");
  await mkdir(path.join(root, "src"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, "key.txt"), "top secret");
  await writeFile(path.join(root, "src", "a.ts"), "export {};\n");
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("resolveInWorkspace", () => {
  it("resolves relative paths inside the workspace, existing or not", async () => {
    expect(await resolveInWorkspace(root, "src/a.ts", { mustExist: true })).toBe(
      path.join(root, "src/a.ts"),
    );
    expect(await resolveInWorkspace(root, "new/dir/file.txt")).toBe(
      path.join(root, "new/dir/file.txt"),
    );
    expect(await resolveInWorkspace(root, "src/../src/./a.ts")).toBe(path.join(root, "src/a.ts"));
    expect(await resolveInWorkspace(root, "")).toBe(root);
  });

  it("refuses .. escapes with a clear message", async () => {
    await expect(resolveInWorkspace(root, "../x")).rejects.toThrow(ToolInputError);
    await expect(resolveInWorkspace(root, "../x")).rejects.toThrow(
      "path '../x' leaves the workspace",
    );
    await expect(resolveInWorkspace(root, "src/../../secret/key.txt")).rejects.toThrow(
      /leaves the workspace/,
    );
  });

  it("refuses absolute paths, even ones that point inside", async () => {
    await expect(resolveInWorkspace(root, "/etc/passwd")).rejects.toThrow(/is absolute/);
    await expect(resolveInWorkspace(root, path.join(root, "src/a.ts"))).rejects.toThrow(
      ToolInputError,
    );
  });

  it("refuses symlinks whose real path leaves the workspace", async () => {
    await symlink(outside, path.join(root, "link-dir"));
    await symlink(path.join(outside, "key.txt"), path.join(root, "link-file"));
    await expect(resolveInWorkspace(root, "link-dir/key.txt", { mustExist: true })).rejects.toThrow(
      /leaves the workspace \(through a symlink\)/,
    );
    await expect(resolveInWorkspace(root, "link-file")).rejects.toThrow(/leaves the workspace/);
    // Writing a new file under a symlinked directory is refused too.
    await expect(resolveInWorkspace(root, "link-dir/new.txt")).rejects.toThrow(
      /leaves the workspace/,
    );
  });

  it("refuses a dangling symlink rather than writing through it", async () => {
    await symlink(path.join(outside, "not-yet.txt"), path.join(root, "dangling"));
    await expect(resolveInWorkspace(root, "dangling")).rejects.toThrow(
      /symlink to a missing target/,
    );
  });

  it("accepts symlinks that stay inside", async () => {
    await symlink(path.join(root, "src"), path.join(root, "alias"));
    expect(await resolveInWorkspace(root, "alias/a.ts", { mustExist: true })).toBe(
      path.join(root, "src/a.ts"),
    );
  });

  it("says when a required path does not exist", async () => {
    await expect(resolveInWorkspace(root, "nope.txt", { mustExist: true })).rejects.toThrow(
      "path 'nope.txt' does not exist",
    );
  });
});

describe("isInside", () => {
  it("is not fooled by sibling prefixes or names starting with ..", () => {
    expect(isInside("/w/ws", "/w/ws")).toBe(true);
    expect(isInside("/w/ws", "/w/ws/..hidden")).toBe(true);
    expect(isInside("/w/ws", "/w/ws-2/file")).toBe(false);
    expect(isInside("/w/ws", "/w")).toBe(false);
  });
});
