/**
 * The symlink-swap race against the file tools, run as an attacker would:
 * a task's own shell command (through the real run_shell tool) swaps a
 * directory of its checkout with a symlink to a directory outside, over and
 * over (renameat2 RENAME_EXCHANGE, atomic), while the worker's read_file,
 * write_file, list_files and search_files go through that directory. The
 * file tools run in the worker, outside any sandbox; the shell runs once
 * in the real bwrap sandbox (as the sandbox user, as a task's commands do)
 * and once unsandboxed (the strongest attacker: `sandbox: none`). A
 * check-then-open implementation read the sentinel outside within a few
 * calls; none of these calls may reach it.
 */
import { randomBytes } from "node:crypto";
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { StructuredToolInterface } from "@langchain/core/tools";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentTools, TOOL_NAMES } from "../../src/tools/agent-tools.ts";
import { prepareBwrapSandbox, probeBwrap, type ShellSandbox } from "../../src/tools/sandbox.ts";

const SENTINEL = `outside-secret-${randomBytes(6).toString("hex")}`;

// renameat2(AT_FDCWD, "d", AT_FDCWD, "l", RENAME_EXCHANGE) until told to stop.
const SWAPPER = String.raw`
import ctypes, os, platform, sys
nr = {"x86_64": 316, "aarch64": 276}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
n = 0
open("started", "w").close()
while not os.path.exists("stop") and n < 20_000_000:
    if libc.syscall(nr, -100, b"d", -100, b"l", 2) != 0:
        sys.exit("renameat2 failed: errno %d" % ctypes.get_errno())
    n += 1
print("swaps", n)
`;

let base: string;
let ws: string;
let outside: string;
let sandbox: ShellSandbox;

beforeAll(async () => {
  const probe = await probeBwrap();
  // The machine this suite runs on has bubblewrap (scripts/lib/setup.sh installs it).
  expect(probe, "bwrap must work here for these tests").toMatchObject({ ok: true });
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-race-")));
  // The sandbox user must pass through to the workspace root (not list it).
  await chmod(base, 0o711);
  const root = path.join(base, "root");
  ws = path.join(root, "mission");
  outside = path.join(base, "outside");
  await mkdir(ws, { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, "f.txt"), `${SENTINEL}\n`);
  await writeFile(path.join(outside, "only-outside.txt"), `${SENTINEL}\n`);
  sandbox = await prepareBwrapSandbox({
    bin: probe.bin!,
    workspaceRoot: root,
    network: false,
    path: "/usr/bin:/bin",
  });
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A fresh checkout state: `d/` a directory, `l` a symlink to the directory outside. */
async function resetWorkspace(): Promise<void> {
  await rm(ws, { recursive: true, force: true });
  await mkdir(path.join(ws, "d"), { recursive: true });
  await writeFile(path.join(ws, "d", "f.txt"), "inside\n");
  await symlink(outside, path.join(ws, "l"));
  await writeFile(path.join(ws, "swap.py"), SWAPPER);
}

let tools: Map<string, StructuredToolInterface>;

async function call(name: string, args: Record<string, unknown>): Promise<string> {
  return String(await tools.get(name)!.invoke(args));
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe("file tools against a concurrent directory/symlink swap", () => {
  it.each(["in the bwrap sandbox", "with no sandbox"])(
    "never read, list, search or write outside the workspace (the swapping shell %s)",
    async (where) => {
      await resetWorkspace();
      const list = createAgentTools({
        workspace: ws,
        allowed: [...TOOL_NAMES],
        shellTimeoutMs: 600_000,
        onStep: () => {},
        ...(where === "with no sandbox" ? {} : { sandbox }),
      });
      tools = new Map(list.map((t) => [t.name, t]));
      const shell = call("run_shell", { command: "exec /usr/bin/python3 swap.py" });
      // Wait for the event (the swapper has started), not for a time.
      while (!(await exists(path.join(ws, "started")))) {
        await new Promise((r) => setTimeout(r, 20));
      }

      let inside = 0;
      let refused = 0;
      const leaks: string[] = [];
      for (let i = 0; i < 20_000 && (inside < 20 || refused < 20); i++) {
        const results = [
          await call("read_file", { path: "d/f.txt" }),
          await call("write_file", { path: `d/w-${i % 7}.txt`, content: "x" }),
          await call("list_files", { path: "d" }),
          await call("search_files", { pattern: "outside-secret", path: "d" }),
          await call("write_file", { path: "d/sub/new.txt", content: "y" }),
        ];
        for (const text of results) {
          if (text.includes(SENTINEL) || text.includes("only-outside")) leaks.push(text);
        }
        if (results[0] === "inside\n") inside++;
        else if (results[0]!.startsWith("ERROR:")) refused++;
        else leaks.push(`unexpected read: ${results[0]}`);
      }
      await writeFile(path.join(ws, "stop"), "");
      const shellText = await shell;

      // The attack really ran, and really raced the calls: some found the
      // directory, some found the symlink in its place and were refused.
      expect(shellText).toMatch(/^exit_code: 0\nswaps [1-9]\d*/);
      expect(inside).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
      expect(leaks).toEqual([]);
      // Nothing was written outside, and the sentinel is untouched.
      expect((await readdir(outside)).sort()).toEqual(["f.txt", "only-outside.txt"]);
      expect(await readFile(path.join(outside, "f.txt"), "utf8")).toBe(`${SENTINEL}\n`);
    },
    // A bound on a busy machine, not a speed claim: the loop ends on counts, not time.
    180_000,
  );
});
