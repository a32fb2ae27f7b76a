import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { prepareBwrapSandbox, probeBwrap, type ShellSandbox } from "../../src/tools/sandbox.ts";
import { buildShellEnv, runShell } from "../../src/tools/shell.ts";
import { truncateText } from "../../src/tools/truncate.ts";
import { processesMatching } from "../workers/worker-harness.ts";

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), "squad-shell-"));
});
afterEach(async () => {
  await rm(cwd, { recursive: true, force: true });
});

/** Running, and not a zombie waiting to be reaped (some container inits never reap). */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  return state !== "Z" && state !== "X";
}

describe("runShell", () => {
  it("reports a non-zero exit code with stdout and stderr interleaved", async () => {
    const r = await runShell({
      command: "echo out; echo err >&2; echo more; exit 7",
      cwd,
      timeoutMs: 10_000,
    });
    expect(r.exit_code).toBe(7);
    expect(r.output).toBe("out\nerr\nmore\n");
    expect(r.timed_out).toBe(false);
    expect(r.aborted).toBe(false);
  });

  it("runs in cwd with HOME set to it", async () => {
    const r = await runShell({
      command: 'pwd; echo "$HOME"; echo "$TERM"',
      cwd,
      timeoutMs: 10_000,
    });
    const real = await import("node:fs/promises").then((fs) => fs.realpath(cwd));
    expect(r.output.split("\n").slice(0, 3)).toEqual([real, cwd, "dumb"]);
  });

  it("on timeout kills the whole process tree, grandchildren included", async () => {
    const r = await runShell({
      command: "sleep 100 & echo $! > grandchild.pid; sleep 100",
      cwd,
      timeoutMs: 500,
      killGraceMs: 500,
    });
    expect(r.timed_out).toBe(true);
    expect(r.exit_code).toBeNull();
    const pid = Number((await readFile(path.join(cwd, "grandchild.pid"), "utf8")).trim());
    expect(pid).toBeGreaterThan(0);
    expect(await isRunning(pid)).toBe(false);
  });

  it("kills a grandchild that ignores SIGTERM with SIGKILL", async () => {
    const r = await runShell({
      command: "(trap '' TERM; sleep 100) & echo $! > stubborn.pid; sleep 100",
      cwd,
      timeoutMs: 300,
      killGraceMs: 300,
    });
    expect(r.timed_out).toBe(true);
    const pid = Number((await readFile(path.join(cwd, "stubborn.pid"), "utf8")).trim());
    expect(await isRunning(pid)).toBe(false);
  });

  it("does not leave background processes behind after a normal exit", async () => {
    const r = await runShell({
      command: "sleep 100 >/dev/null 2>&1 & echo $! > bg.pid; echo started",
      cwd,
      timeoutMs: 10_000,
      killGraceMs: 500,
    });
    expect(r.exit_code).toBe(0);
    expect(r.output).toBe("started\n");
    const pid = Number((await readFile(path.join(cwd, "bg.pid"), "utf8")).trim());
    expect(await isRunning(pid)).toBe(false);
  });

  it("on abort kills the command and says so", async () => {
    const ctl = new AbortController();
    const running = runShell({
      command: "echo begun; sleep 100",
      cwd,
      timeoutMs: 60_000,
      signal: ctl.signal,
    });
    setTimeout(() => ctl.abort(), 200);
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(r.timed_out).toBe(false);
    expect(r.exit_code).toBeNull();
  });

  it("caps the output with a visible truncation note, keeping head and tail", async () => {
    const r = await runShell({
      command: "echo FIRST; head -c 100000 /dev/zero | tr '\\0' x; echo; echo LAST",
      cwd,
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
    });
    expect(r.exit_code).toBe(0);
    expect(r.output.startsWith("FIRST\n")).toBe(true);
    expect(r.output.trimEnd().endsWith("LAST")).toBe(true);
    expect(r.output).toMatch(/\[\.\.\. truncated \d+ bytes \.\.\.\]/);
    expect(Buffer.byteLength(r.output)).toBeLessThan(1100);
  });

  it("reports a command that can not start", async () => {
    const r = await runShell({ command: "true", cwd: path.join(cwd, "missing"), timeoutMs: 5_000 });
    expect(r.exit_code).toBeNull();
    expect(r.output).toMatch(/failed to start/);
  });
});

describe("runShell in the bwrap sandbox", () => {
  let root: string;
  let ws: string;
  let sandbox: ShellSandbox;
  beforeAll(async () => {
    const probe = await probeBwrap();
    expect(probe, "bwrap must work here for these tests").toMatchObject({ ok: true });
    root = await mkdtemp(path.join(os.tmpdir(), "squad-shell-sbx-"));
    ws = path.join(root, "mission");
    await mkdir(ws);
    sandbox = await prepareBwrapSandbox({
      bin: probe.bin!,
      workspaceRoot: root,
      network: false,
      path: process.env.PATH ?? "/usr/bin:/bin",
    });
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("keeps the exit code and the output, and nothing of bwrap's own reports", async () => {
    const r = await runShell({ command: "echo hi; exit 5", cwd: ws, timeoutMs: 20_000, sandbox });
    expect(r).toMatchObject({ exit_code: 5, output: "hi\n", timed_out: false });
  });

  it("on timeout kills everything in the sandbox, a process that ignores SIGTERM included", async () => {
    const marker = `shell-sbx-${randomBytes(4).toString("hex")}`;
    const r = await runShell({
      command: `(trap '' TERM; exec -a ${marker} sleep 300) & bash -c 'sleep 300; :' ${marker}`,
      cwd: ws,
      timeoutMs: 500,
      killGraceMs: 300,
      sandbox,
    });
    expect(r.timed_out).toBe(true);
    expect(await processesMatching(marker)).toEqual([]);
  });

  it("honours an abort that comes while the sandboxed command is being set up", async () => {
    const ctl = new AbortController();
    const running = runShell({
      command: "sleep 30",
      cwd: ws,
      timeoutMs: 20_000,
      signal: ctl.signal,
      sandbox,
    });
    // runShell is awaiting the workspace's realpath now, its abort listener not yet added.
    ctl.abort();
    expect(await running).toMatchObject({ aborted: true, timed_out: false, exit_code: null });
  });

  it("on abort and after a normal exit leaves nothing running", async () => {
    const marker = `shell-sbx-${randomBytes(4).toString("hex")}`;
    const ctl = new AbortController();
    const running = runShell({
      command: `bash -c 'sleep 300; :' ${marker} & echo begun; sleep 300`,
      cwd: ws,
      timeoutMs: 60_000,
      signal: ctl.signal,
      sandbox,
    });
    setTimeout(() => ctl.abort(), 300);
    expect((await running).aborted).toBe(true);
    expect(await processesMatching(marker)).toEqual([]);
    const done = await runShell({
      command: `bash -c 'sleep 300; :' ${marker} >/dev/null 2>&1 & echo started`,
      cwd: ws,
      timeoutMs: 20_000,
      sandbox,
    });
    expect(done).toMatchObject({ exit_code: 0, output: "started\n" });
    expect(await processesMatching(marker)).toEqual([]);
  });
});

describe("buildShellEnv", () => {
  it("copies only the allow-list plus extras", () => {
    const env = buildShellEnv(
      { EXTRA: "1" },
      {
        home: "/ws",
        from: { PATH: "/bin", OPENAI_API_KEY: "sk-secret", NATS_PASS: "pw", LANG: "en_US.UTF-8" },
      },
    );
    expect(env).toMatchObject({
      PATH: "/bin",
      HOME: "/ws",
      LANG: "en_US.UTF-8",
      TERM: "dumb",
      EXTRA: "1",
    });
    expect(env).not.toHaveProperty("OPENAI_API_KEY");
    expect(env).not.toHaveProperty("NATS_PASS");
  });
});

describe("truncateText", () => {
  it("leaves short text alone and marks what it cuts", () => {
    expect(truncateText("short", 100)).toBe("short");
    const cut = truncateText("a".repeat(50) + "b".repeat(50), 20);
    expect(cut).toBe(`${"a".repeat(10)}\n[... truncated 80 bytes ...]\n${"b".repeat(10)}`);
  });
});
