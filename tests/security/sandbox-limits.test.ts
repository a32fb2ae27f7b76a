/**
 * Issue 11, finding 8, as an attacker runs it: a fork bomb, a memory bomb
 * and disk fillers (one big file, many files, an endless writer, /tmp) from
 * inside a task's command, through the real shell tool and the sandbox a
 * worker sets up, under `bwrap` and under `none`. Each must end with a
 * failure that names the limit, and the next command must run as usual.
 * Then the same through a real worker process: the bombs fail their tasks
 * with the limit in the reason, and the same worker runs the next task.
 * The limits are kept small (roster overrides) so the attacks are cheap;
 * the defaults' values are tested in tests/tools/task-limits.test.ts.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxForAgent, type ShellSandbox } from "../../src/tools/sandbox.ts";
import { runShell, type ShellResult } from "../../src/tools/shell.ts";
import type { TaskLimitsSpec } from "../../src/tools/task-limits.ts";
import { killAllSwarms } from "../helpers/swarm-process.ts";
import {
  assign,
  isAlive,
  makeTask,
  newMission,
  spawnWorker,
  startBus,
  type Bus,
} from "../workers/worker-harness.ts";

const LIMITS: Required<TaskLimitsSpec> = {
  processes: 32,
  memory_mb: 64,
  file_mb: 4,
  workspace_mb: 16,
  tmp_mb: 8,
  cpu_s: 3,
};

/** The attacks, each with the limit its failure must name. */
const ATTACKS = {
  // The classic bomb; the command itself stays (sleep) so the bomb is not ended with it.
  forkBomb: {
    command: ":(){ :|:& };:; sleep 60",
    names: /process limit reached \(limits\.processes = 32\)/,
  },
  memoryBomb: {
    command: "head -c 3G /dev/zero | tail | wc -c",
    names: /memory limit reached \(limits\.memory_mb = 64\)/,
  },
  pythonMemory: {
    command: "python3 -c 'b = bytearray(3 * 1024 ** 3); print(len(b))'",
    names: /memory limit reached \(limits\.memory_mb = 64\)/,
  },
  bigFile: {
    command: "head -c 100M /dev/zero > big.bin; ls -l big.bin",
    names: /file size limit reached \(limits\.file_mb = 4\)/,
  },
  manyFiles: {
    command: "for i in $(seq 40); do head -c 1M /dev/zero > f$i; done; echo written",
    names: /workspace size limit exceeded \(limits\.workspace_mb = 16\)/,
  },
  // Never ends by itself: only the watch of the workspace while it runs can stop it.
  endlessWriter: {
    command: "i=0; while :; do head -c 1M /dev/zero > g$i; i=$((i+1)); sleep 0.02; done",
    names: /workspace size limit exceeded \(limits\.workspace_mb = 16\)/,
  },
  tmpFiller: {
    command: "for i in 1 2 3 4 5 6; do head -c 2M /dev/zero > /tmp/x$i; done; df /tmp",
    names: /\/tmp size limit reached \(limits\.tmp_mb = 8\)/,
  },
  cpuHog: { command: "while :; do :; done", names: /CPU time limit reached \(limits\.cpu_s = 3\)/ },
} as const;

let workspaceRoot: string;
const sandboxes: Record<"bwrap" | "none", ShellSandbox> = {} as never;

beforeAll(async () => {
  workspaceRoot = await mkdtemp(path.join(os.tmpdir(), "squad-limits-"));
  const log = pino({ level: "silent" });
  for (const mode of ["bwrap", "none"] as const) {
    sandboxes[mode] = await sandboxForAgent({
      agent: "attacker",
      requested: mode,
      requestedBy: "the roster",
      workspaceRoot,
      network: false,
      limits: LIMITS,
      log,
    });
  }
  // The attacks' proof is the kernel's counters: the cgroups must be there.
  expect(sandboxes.bwrap.cgroups, "cgroups must be usable here for these tests").toBeTruthy();
});

afterAll(async () => {
  await killAllSwarms();
  if (workspaceRoot) await rm(workspaceRoot, { recursive: true, force: true });
});

let seq = 0;
async function attack(mode: "bwrap" | "none", command: string): Promise<ShellResult> {
  // Each attack in a mission workspace of its own: a full workspace must not fail the next one.
  const cwd = path.join(workspaceRoot, `m-${mode}-${++seq}`);
  await mkdir(cwd);
  return runShell({ command, cwd, timeoutMs: 60_000, sandbox: sandboxes[mode] });
}

describe.each(["bwrap", "none"] as const)("under sandbox: %s", (mode) => {
  const cases = Object.entries(ATTACKS).filter(
    // /tmp is the host's under none: its size is bwrap's tmpfs option.
    ([name]) => mode === "bwrap" || name !== "tmpFiller",
  );
  it.each(cases)("%s fails, naming the limit, and the next command runs", async (_, a) => {
    const r = await attack(mode, a.command);
    expect(`${r.limit?.message} ${JSON.stringify(r)}`).toMatch(a.names);
    expect(r.output).toContain(`[squad: ${r.limit!.message}]`);
    expect(r.timed_out).toBe(false);
    const next = await attack(mode, "echo still-here; ls /tmp | wc -l");
    expect(next).toMatchObject({ exit_code: 0, timed_out: false });
    expect(next.limit).toBeUndefined();
    expect(next.output).toMatch(/^still-here\n/);
  });
});

describe("without cgroups", () => {
  it("the worker says so at start, and commands still get hard rlimits, processes as RLIMIT_NPROC", async () => {
    const lines: string[] = [];
    const log = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    );
    // An operator-given cgroup that is none: refused, not replaced by another hierarchy.
    const env = { ...process.env, SWARM_CGROUP: workspaceRoot };
    const sb = await sandboxForAgent({
      agent: "attacker",
      requested: "bwrap",
      requestedBy: "the roster",
      workspaceRoot,
      network: false,
      limits: LIMITS,
      log,
      env,
    });
    expect(sb.cgroups).toBeNull();
    const warning = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string })
      .find((l) => /cgroups are not usable here/.test(l.msg));
    expect(warning?.level).toBe(40);
    expect(warning?.reason).toMatch(/^SWARM_CGROUP=.* is not a cgroup v2 directory/);
    expect(warning?.msg).toMatch(/memory is not limited/);
    expect(warning?.msg).toMatch(
      /RLIMIT_NPROC, which counts every process of the sandbox user on this machine/,
    );
    const cwd = path.join(workspaceRoot, "m-rlimits");
    await mkdir(cwd);
    const r = await runShell({
      command: "ulimit -Hu; ulimit -Hf; ulimit -Ht; ulimit -Hc",
      cwd,
      timeoutMs: 20_000,
      sandbox: sb,
    });
    // ulimit -f counts 1024-byte blocks.
    expect(r.output).toBe(`32\n${4 * 1024}\n4\n0\n`);
    const big = await runShell({
      command: ATTACKS.bigFile.command,
      cwd,
      timeoutMs: 20_000,
      sandbox: sb,
    });
    expect(big.limit?.message).toMatch(ATTACKS.bigFile.names);
  });
});

describe("a worker under attack", () => {
  let bus: Bus;
  beforeAll(async () => {
    bus = await startBus();
  });
  afterAll(async () => {
    await killAllSwarms();
    await bus?.close();
  });

  it("fails each bomb's task with the limit in the reason, once, and runs the next task", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "squad-limits-roster-"));
    const roster = path.join(dir, "roster.yaml");
    await writeFile(
      roster,
      `agents:
  - name: attacker
    description: runs what it is given
    persona: You run commands.
    tools: [run_shell]
    sandbox: bwrap
    limits: ${JSON.stringify(LIMITS)}
`,
    );
    const worker = await spawnWorker(bus, "attacker", { SWARM_ROSTER: roster });
    const bombs = [
      ["fork", ATTACKS.forkBomb],
      ["memory", ATTACKS.memoryBomb],
      ["disk", ATTACKS.manyFiles],
    ] as const;
    for (const [id, a] of bombs) {
      const mission = newMission(`bomb-${id}`);
      await assign(bus, mission, makeTask({ id, agent: "attacker", run: [a.command] }));
      const done = await bus.events.result(mission, id, 60_000);
      expect(done.type, id).toBe("task_failed");
      expect(done.payload.result.error).toMatch(a.names);
      expect(done.payload.result.error).toMatch(/^run step 1 stopped: /);
      // The same command would hit the same limit: not offered to another replica.
      expect(done.payload.result.retryable).toBe(false);
      expect(done.payload.result.steps[0]?.output).toMatch(a.names);
    }
    // The worker is healthy: alive, and it runs the next task.
    expect(isAlive(worker.pid)).toBe(true);
    const mission = newMission("after-bombs");
    await assign(bus, mission, makeTask({ id: "ok", agent: "attacker", run: ["echo fine"] }));
    const ok = await bus.events.result(mission, "ok", 60_000);
    expect(ok.type).toBe("task_completed");
    expect(ok.payload.result.worker).toBe(worker.worker);
    expect(ok.payload.result.steps[0]?.output).toBe("fine\n");
    // No cgroup of any command is left behind.
    for (const c of ["pids", "memory", "freezer"]) {
      const entries = await readdir(`/sys/fs/cgroup/${c}`).catch(() => [] as string[]);
      expect(entries.filter((e) => e.startsWith(`squad-${worker.pid}-`))).toEqual([]);
    }
    await rm(dir, { recursive: true, force: true });
  });
});
