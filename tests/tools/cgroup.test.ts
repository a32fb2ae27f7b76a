/**
 * Per-command cgroups on this machine's real kernel: created with the
 * command's limits, the command placed in it before it runs anything, every
 * process in it killed (a setsid one included), and removed. The cgroup v2
 * kill (cgroup.kill) is tried on this machine's cgroup2 hierarchy too.
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  cgroupPlaces,
  createCommandCgroup,
  detectCgroups,
  placementArgs,
  staleCgroupNames,
  sweepStaleCgroups,
  v2CommandCgroup,
  type CommandCgroup,
} from "../../src/tools/cgroup.ts";
import { MIB } from "../../src/tools/task-limits.ts";

const root = process.getuid?.() === 0;
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Starts `sh` placed in the cgroup; it starts a setsid sleeper and reports both pids. */
async function startIn(cg: CommandCgroup): Promise<number[]> {
  const [file, ...args] = placementArgs(cg.procsFiles, [
    "/bin/sh",
    "-c",
    "setsid sleep 300 >/dev/null 2>&1 & echo $$ $!; exec sleep 300",
  ]);
  const child = spawn(file!, args, { stdio: ["ignore", "pipe", "inherit"], detached: true });
  const line = await new Promise<string>((resolve) =>
    child.stdout.once("data", (b: Buffer) => resolve(b.toString())),
  );
  child.unref();
  return line.trim().split(" ").map(Number);
}

async function procs(cg: CommandCgroup): Promise<number[]> {
  const text = await readFile(cg.procsFiles[0]!, "utf8");
  return text.split("\n").filter(Boolean).map(Number);
}

describe("cgroups here", () => {
  it("are found and checked at start (a trial cgroup is made and removed), or the reason is said", async () => {
    const r = await detectCgroups();
    if (root) expect(r).toMatchObject({ ok: true });
    else expect(r).toMatchObject({ ok: false, reason: expect.any(String) as unknown });
  });

  it.runIf(root)(
    "hold a command from its first instruction, with its limits, and kill all of it",
    async () => {
      const found = await detectCgroups();
      if (!found.ok) throw new Error(found.reason);
      const cg = await createCommandCgroup(found.support, { processes: 20, memory_mb: 48 });
      const dirs = cg.procsFiles.map((f) => path.dirname(f));
      if (found.support.version === 1) {
        const pidsDir = dirs.find((d) => d.includes("/pids/"))!;
        const memDir = dirs.find((d) => d.includes("/memory/"))!;
        expect(await readFile(path.join(pidsDir, "pids.max"), "utf8")).toBe("20\n");
        expect(Number(await readFile(path.join(memDir, "memory.limit_in_bytes"), "utf8"))).toBe(
          48 * MIB,
        );
      } else {
        expect(await readFile(path.join(dirs[0]!, "pids.max"), "utf8")).toBe("20\n");
        expect(Number(await readFile(path.join(dirs[0]!, "memory.max"), "utf8"))).toBe(48 * MIB);
      }
      const [shell, daemon] = await startIn(cg);
      // Both in it: the wrapper wrote its own pid before exec, the daemon inherited it.
      expect((await procs(cg)).sort()).toEqual([shell, daemon].sort());
      await cg.kill();
      expect(await procs(cg)).toEqual([]);
      await cg.remove();
      for (const d of dirs) expect(await exists(d)).toBe(false);
    },
  );

  it.runIf(root)(
    "on cgroup v2, cgroup.kill ends every process, a setsid one included",
    async () => {
      const places = cgroupPlaces(
        await readFile("/proc/self/mountinfo", "utf8"),
        await readFile("/proc/self/cgroup", "utf8"),
      );
      expect(places.v2, "a cgroup2 hierarchy is mounted on this machine").toBeDefined();
      const dir = path.join(places.v2!, `squad-test-${process.pid}-${Date.now()}`);
      await mkdir(dir);
      const cg = v2CommandCgroup(dir);
      try {
        expect(await exists(path.join(dir, "cgroup.kill"))).toBe(true);
        const started = await startIn(cg);
        expect((await procs(cg)).sort()).toEqual(started.sort());
        await cg.kill();
        expect(await procs(cg)).toEqual([]);
        for (const pid of started) {
          // Reaped by init once killed: wait for the pid to be gone, bounded by the test's timeout.
          while (await exists(`/proc/${pid}/cmdline`).then(async (e) => e && !(await zombie(pid))))
            await sleep(10);
        }
      } finally {
        await cg.remove();
      }
      expect(await exists(dir)).toBe(false);
    },
  );
});

describe("cgroups of dead workers", () => {
  it("are told apart by the pid in their name (pure)", () => {
    const alive = (pid: number) => pid === 100;
    expect(
      staleCgroupNames(
        [
          "squad-100-1",
          "squad-200-7",
          "squad-probe-300-1701",
          "squad-worker",
          `squad-${process.pid}-3`,
          "user.slice",
          "squad-x-1",
        ],
        alive,
      ),
    ).toEqual(["squad-200-7", "squad-probe-300-1701"]);
  });

  it.runIf(root)(
    "are swept at start: what a SIGKILLed worker left, processes and all, is killed and removed",
    async () => {
      const found = await detectCgroups();
      if (!found.ok) throw new Error(found.reason);
      // A worker that ran a command in its cgroup and was SIGKILLed before removing it.
      const worker = spawn("/bin/sh", ["-c", "exit 0"]);
      const deadPid = await new Promise<number>((resolve) =>
        worker.once("exit", () => resolve(worker.pid!)),
      );
      const left = await createCommandCgroup(
        found.support,
        { processes: 16, memory_mb: 64 },
        `squad-${deadPid}-1`,
      );
      const [sh] = await startIn(left);
      const mine = await createCommandCgroup(found.support, { processes: 16, memory_mb: 64 });
      try {
        const swept = await sweepStaleCgroups(found.support);
        expect(swept).toContain(`squad-${deadPid}-1`);
        const parent = path.dirname(left.procsFiles[0]!);
        expect(await exists(parent)).toBe(false);
        // This process's own cgroups stay.
        expect(await exists(path.dirname(mine.procsFiles[0]!))).toBe(true);
        expect(
          await exists(`/proc/${sh}/cmdline`).then(async (e) => e && !(await zombie(sh!))),
        ).toBe(false);
      } finally {
        await left.remove();
        await mine.remove();
      }
    },
  );
});

async function zombie(pid: number): Promise<boolean> {
  const s = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return s.slice(s.lastIndexOf(")") + 2).startsWith("Z");
}
