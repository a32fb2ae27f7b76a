import {
  mkdir,
  mkdtemp,
  readFile as fsReadFile,
  rm,
  stat,
  symlink,
  writeFile as fsWriteFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listFiles, readFile, searchFiles, writeFile } from "../../src/tools/files.ts";
import { DEFAULT_SANDBOX_ID } from "../../src/tools/sandbox-user.ts";
import { ToolInputError } from "../../src/tools/tool-input-error.ts";

let base: string;
let root: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), "squad-files-"));
  root = path.join(base, "ws");
  await mkdir(path.join(root, "src/lib"), { recursive: true });
  await mkdir(path.join(root, "node_modules/dep"), { recursive: true });
  await fsWriteFile(
    path.join(root, "src/index.ts"),
    "import { x } from './lib/x.ts';\nconsole.log(x);\n// TODO: more\n",
  );
  await fsWriteFile(path.join(root, "src/lib/x.ts"), "export const x = 1; // TODO later\n");
  await fsWriteFile(path.join(root, "node_modules/dep/index.js"), "// TODO in a dependency\n");
  await fsWriteFile(path.join(base, "outside.txt"), "TODO outside\n");
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("file tools", () => {
  it("write_file creates parent directories and read_file reads it back", async () => {
    expect(await writeFile(root, "docs/deep/README.md", "# Hi\n")).toEqual({
      path: "docs/deep/README.md",
      bytes: 5,
    });
    expect(await readFile(root, "docs/deep/README.md")).toBe("# Hi\n");
  });

  it.runIf(process.getuid?.() === 0)(
    "write_file, run by a root worker, hands what it creates to the sandbox user",
    async () => {
      await writeFile(root, "made/new.txt", "x");
      for (const p of ["made", "made/new.txt"]) {
        expect((await stat(path.join(root, p))).uid, p).toBe(DEFAULT_SANDBOX_ID);
      }
      // An existing file keeps its owner; `owner: null` keeps the worker's own.
      await writeFile(root, "src/index.ts", "y");
      expect((await stat(path.join(root, "src/index.ts"))).uid).toBe(0);
      await writeFile(root, "mine.txt", "z", { owner: null });
      expect((await stat(path.join(root, "mine.txt"))).uid).toBe(0);
    },
  );

  it("refuses paths outside the workspace", async () => {
    await expect(readFile(root, "../outside.txt")).rejects.toThrow(ToolInputError);
    await expect(writeFile(root, "../evil.txt", "x")).rejects.toThrow(/leaves the workspace/);
    await expect(writeFile(root, "/tmp/evil.txt", "x")).rejects.toThrow(/absolute/);
    await symlink(base, path.join(root, "up"));
    await expect(readFile(root, "up/outside.txt")).rejects.toThrow(/leaves the workspace/);
    await expect(fsReadFile(path.join(base, "outside.txt"), "utf8")).resolves.toBe(
      "TODO outside\n",
    );
  });

  it("enforces the size caps with clear errors", async () => {
    await fsWriteFile(path.join(root, "big.log"), Buffer.alloc(300 * 1024, 97));
    await expect(readFile(root, "big.log")).rejects.toThrow(/300 KiB.*at most 256 KiB.*head, tail/);
    await expect(writeFile(root, "huge.txt", "x".repeat(1024 * 1024 + 1))).rejects.toThrow(
      /at most 1024 KiB/,
    );
  });

  it("refuses binary files, directories and missing files on read", async () => {
    await fsWriteFile(path.join(root, "bin.dat"), Buffer.from([1, 0, 2, 3]));
    await expect(readFile(root, "bin.dat")).rejects.toThrow(/binary/);
    await expect(readFile(root, "src")).rejects.toThrow(/is a directory/);
    await expect(readFile(root, "nope.txt")).rejects.toThrow(/does not exist/);
  });

  it("list_files lists recursively, directories with /, without entering node_modules", async () => {
    const r = await listFiles(root);
    expect(r).toEqual({
      entries: ["node_modules/", "src/", "src/index.ts", "src/lib/", "src/lib/x.ts"],
      truncated: false,
    });
    expect((await listFiles(root, "src/lib")).entries).toEqual(["src/lib/x.ts"]);
    const limited = await listFiles(root, ".", 2);
    expect(limited).toEqual({ entries: ["node_modules/", "src/"], truncated: true });
  });

  it("search_files finds regex or plain-text matches as file:line: text", async () => {
    const r = await searchFiles(root, "TODO");
    expect(r.matches).toEqual([
      "src/index.ts:3: // TODO: more",
      "src/lib/x.ts:1: export const x = 1; // TODO later",
    ]);
    expect(r.mode).toBe("regex");
    const regex = await searchFiles(root, "export const \\w+ = \\d");
    expect(regex.matches).toEqual(["src/lib/x.ts:1: export const x = 1; // TODO later"]);
    // Not a valid regex: searched as plain text.
    const text = await searchFiles(root, "log(x");
    expect(text).toMatchObject({ mode: "text", matches: ["src/index.ts:2: console.log(x);"] });
    const bounded = await searchFiles(root, "TODO", ".", 1);
    expect(bounded).toMatchObject({ matches: ["src/index.ts:3: // TODO: more"], truncated: true });
  });

  it("search_files takes nested repetitions (RE2 matches them in linear time)", async () => {
    await fsWriteFile(path.join(root, "as.txt"), `${"a".repeat(5000)}\nab\n`);
    expect(await searchFiles(root, "(a+)+$", "as.txt")).toMatchObject({
      mode: "regex",
      matches: [`as.txt:1: ${"a".repeat(200)}`],
    });
    expect((await searchFiles(root, "(a|a?)+b", "as.txt")).matches).toEqual(["as.txt:2: ab"]);
    // RE2 has no backreferences: such a pattern is searched as text.
    expect(await searchFiles(root, "(a)\\1", "as.txt")).toMatchObject({
      mode: "text",
      matches: [],
    });
  });

  it("list_files and search_files list a symlink but never enter it", async () => {
    await symlink(base, path.join(root, "up"));
    expect((await listFiles(root)).entries).toContain("up");
    expect((await searchFiles(root, "TODO outside")).matches).toEqual([]);
    await expect(listFiles(root, "up")).rejects.toThrow(/leaves the workspace/);
  });
});
