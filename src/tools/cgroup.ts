/**
 * One cgroup per command: the kernel counts and caps what the command and
 * everything it starts use (processes, memory, CPU time), says when a limit
 * was hit, and kills every descendant when the command ends, a `setsid`
 * daemon included (no process group or session escapes a cgroup).
 *
 * Two layouts:
 * - cgroup v2 (one hierarchy, e.g. /sys/fs/cgroup with memory.max,
 *   pids.max, cgroup.kill): the worker's cgroup, or SWARM_CGROUP, must have
 *   the memory and pids controllers; per-command cgroups are created below it.
 * - cgroup v1 (a hierarchy per controller, /sys/fs/cgroup/{pids,memory,...}):
 *   a cgroup of the same name in each of pids, memory and, when mounted,
 *   freezer (to kill without a race) and cpuacct (CPU time).
 *
 * The command is placed in its cgroup before it runs anything of its own: a
 * tiny shell wrapper (placementArgs) writes its own pid into cgroup.procs,
 * then execs the rest of the command line. The worker itself is never moved
 * into these cgroups, so a command hitting a limit leaves it healthy.
 */
import { mkdir, readFile, readdir, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors.ts";
import { MIB, type TaskLimits } from "./task-limits.ts";

export type CgroupSupport =
  | { version: 2; parent: string }
  | {
      version: 1;
      /** Parent directory per controller; pids and memory always, the others when mounted. */
      parents: { pids: string; memory: string; freezer?: string; cpuacct?: string };
    };

/** Where the calling process sits in each mounted hierarchy (from /proc/self/mountinfo and /proc/self/cgroup). */
export interface CgroupPlaces {
  /** The process's cgroup directory in the cgroup2 hierarchy, when one is mounted. */
  v2?: string;
  /** Per v1 controller, the process's cgroup directory in that controller's hierarchy. */
  v1: Partial<Record<string, string>>;
}

/**
 * The calling process's cgroup directories (pure): each mount's mount point
 * joined with the process's path in that hierarchy, minus the part above the
 * mount's own root (a container sees its cgroup mounted as its root).
 */
export function cgroupPlaces(mountinfo: string, selfCgroup: string): CgroupPlaces {
  const self = new Map<string, string>(); // "0" (v2) or controller name → path
  for (const line of selfCgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") self.set("", m[3]!);
    else for (const c of m[2]!.split(",")) if (c) self.set(c, m[3]!);
  }
  const places: CgroupPlaces = { v1: {} };
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const [fstype, , superOpts = ""] = line.slice(sep + 3).split(" ");
    const root = unescapeMount(left[3] ?? "/");
    const mountPoint = unescapeMount(left[4] ?? "");
    const under = (p: string | undefined) => {
      if (p === undefined) return undefined;
      const rel =
        root === "/"
          ? p
          : p === root
            ? "/"
            : p.startsWith(`${root}/`)
              ? p.slice(root.length)
              : null;
      return rel === null ? undefined : path.join(mountPoint, rel).replace(/(.)\/+$/, "$1");
    };
    if (fstype === "cgroup2") {
      places.v2 ??= under(self.get(""));
    } else if (fstype === "cgroup") {
      for (const c of superOpts.split(",")) {
        if (!["pids", "memory", "freezer", "cpuacct"].includes(c)) continue;
        const dir = under(self.get(c));
        if (dir && !places.v1[c]) places.v1[c] = dir;
      }
    }
  }
  return places;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The layout to use (pure): v2 where its hierarchy has both controllers we
 * need, else v1 where pids and memory are mounted, else why neither works.
 * `delegated`: an operator-given v2 directory (SWARM_CGROUP).
 */
export function chooseCgroups(
  places: CgroupPlaces,
  v2Controllers: string[] | null,
  delegated?: string,
): CgroupSupport | { reason: string } {
  const v2 = delegated ?? places.v2;
  if (v2 && v2Controllers?.includes("memory") && v2Controllers.includes("pids")) {
    return { version: 2, parent: v2 };
  }
  if (delegated) {
    // Asked for by the operator: not silently replaced by another hierarchy.
    return {
      reason: `SWARM_CGROUP=${delegated} is not a cgroup v2 directory with the memory and pids controllers (has: ${(v2Controllers ?? []).filter(Boolean).join(" ") || "none"})`,
    };
  }
  const { pids, memory, freezer, cpuacct } = places.v1;
  if (pids && memory) {
    return {
      version: 1,
      parents: { pids, memory, ...(freezer ? { freezer } : {}), ...(cpuacct ? { cpuacct } : {}) },
    };
  }
  if (v2) {
    return {
      reason: `the cgroup2 hierarchy at ${v2} lacks the memory and pids controllers (has: ${(v2Controllers ?? []).join(" ") || "none"}) and no cgroup v1 pids+memory hierarchies are mounted`,
    };
  }
  return { reason: "no cgroup hierarchy is mounted (/sys/fs/cgroup)" };
}

/** A per-command cgroup, created with the command's limits. */
export interface CommandCgroup {
  /** Files the placement wrapper writes the command's pid into. */
  procsFiles: string[];
  /** Limits the kernel enforced so far (counts since creation). */
  hits(): Promise<CgroupHits>;
  /** Kills every process in it and waits (bounded) until it is empty. */
  kill(): Promise<void>;
  /** Kills what is left and removes it. Never throws. */
  remove(): Promise<void>;
}

export interface CgroupHits {
  /** Forks refused at the process limit. */
  pidsMax: number;
  /** Processes the kernel's OOM killer killed at the memory limit. */
  oomKills: number;
  /** CPU time used, in seconds, when the layout accounts it. */
  cpuS: number | null;
}

/**
 * The argv that puts the command in its cgroup, then execs `rest` (pure).
 * Exit code 125 when the pid could not be written (the command never ran).
 */
export function placementArgs(procsFiles: string[], rest: string[]): string[] {
  return [
    "/bin/sh",
    "-c",
    'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"',
    "squad-cgroup",
    ...procsFiles,
    "--",
    ...rest,
  ];
}

/** The kernel's `key value` files (pids.events, memory.events, cpu.stat, oom_control) as a map (pure). */
export function parseKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

const read = (file: string) => readFile(file, "utf8").catch(() => "");

/**
 * Finds and checks this process's cgroups: a trial cgroup is created, given
 * limits and removed. `env.SWARM_CGROUP`: a cgroup v2 directory delegated to
 * the worker, used instead of its own cgroup.
 */
export async function detectCgroups(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ok: true; support: CgroupSupport } | { ok: false; reason: string }> {
  if (process.platform !== "linux") return { ok: false, reason: "not Linux" };
  const places = cgroupPlaces(await read("/proc/self/mountinfo"), await read("/proc/self/cgroup"));
  const delegated = env.SWARM_CGROUP?.trim() || undefined;
  const v2 = delegated ?? places.v2;
  const controllers = v2
    ? (await read(path.join(v2, "cgroup.controllers"))).trim().split(/\s+/)
    : null;
  const chosen = chooseCgroups(places, controllers, delegated);
  if ("reason" in chosen) return { ok: false, reason: chosen.reason };
  try {
    if (chosen.version === 2) await enableV2Controllers(chosen);
    const trial = await createCommandCgroup(
      chosen,
      { processes: 16, memory_mb: 64 },
      `squad-probe-${process.pid}-${Date.now()}`,
    );
    await trial.remove();
    await sweepStaleCgroups(chosen);
    return { ok: true, support: chosen };
  } catch (err) {
    const where = chosen.version === 2 ? chosen.parent : chosen.parents.pids;
    return { ok: false, reason: `cannot create cgroups under ${where}: ${errorMessage(err)}` };
  }
}

/**
 * cgroup v2 hands a controller to child cgroups only through the parent's
 * cgroup.subtree_control, which a cgroup holding processes may not set ("no
 * internal processes"). In a container the worker typically sits in such a
 * cgroup alone: its processes are moved into a leaf `squad-worker` first.
 */
async function enableV2Controllers(s: { parent: string }): Promise<void> {
  const control = path.join(s.parent, "cgroup.subtree_control");
  const enabled = (await read(control)).split(/\s+/);
  if (enabled.includes("memory") && enabled.includes("pids")) return;
  try {
    await writeFile(control, "+memory +pids");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EBUSY") throw err;
    const leaf = path.join(s.parent, "squad-worker");
    await mkdir(leaf, { recursive: true });
    for (const pid of (await read(path.join(s.parent, "cgroup.procs"))).split("\n")) {
      if (pid.trim()) await writeFile(path.join(leaf, "cgroup.procs"), pid.trim()).catch(() => {});
    }
    await writeFile(control, "+memory +pids");
  }
}

/**
 * The per-command cgroups (`squad-<pid>-<n>`, `squad-probe-<pid>-<n>`) among
 * `names` whose worker is gone: a worker SIGKILLed mid-command never removed
 * them. Pure; `alive(pid)` says whether a process still runs.
 */
export function staleCgroupNames(
  names: readonly string[],
  alive: (pid: number) => boolean,
): string[] {
  return names.filter((name) => {
    const m = /^squad-(?:probe-)?(\d+)-\d+$/.exec(name);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Kills what is left in the cgroups of dead workers and removes them, so
 * cgroups do not pile up under the parent across worker restarts. A pid
 * reused by a live process keeps its name's cgroups: they are left alone.
 */
export async function sweepStaleCgroups(support: CgroupSupport): Promise<string[]> {
  const parent = support.version === 2 ? support.parent : support.parents.pids;
  const names = await readdir(parent).catch(() => [] as string[]);
  const stale = staleCgroupNames(names, processAlive);
  for (const name of stale) {
    const made =
      support.version === 2
        ? v2CommandCgroup(path.join(parent, name))
        : v1Cgroup(
            Object.fromEntries(
              Object.entries(support.parents).map(([c, p]) => [c, path.join(p, name)]),
            ) as { pids: string; memory: string; freezer?: string; cpuacct?: string },
          );
    await made.remove().catch(() => {});
  }
  return stale;
}

let seq = 0;

/** A fresh, uniquely named cgroup with `limits` applied. */
export async function createCommandCgroup(
  support: CgroupSupport,
  limits: Pick<TaskLimits, "processes" | "memory_mb">,
  name = `squad-${process.pid}-${++seq}`,
): Promise<CommandCgroup> {
  const bytes = String(limits.memory_mb * MIB);
  if (support.version === 2) {
    const dir = path.join(support.parent, name);
    await mkdir(dir);
    const made = v2CommandCgroup(dir);
    try {
      await writeFile(path.join(dir, "pids.max"), String(limits.processes));
      await writeFile(path.join(dir, "memory.max"), bytes);
      // No swap to spill into, and an OOM ends the whole command, not one random process.
      await writeFile(path.join(dir, "memory.swap.max"), "0").catch(() => {});
      await writeFile(path.join(dir, "memory.oom.group"), "1").catch(() => {});
    } catch (err) {
      await made.remove();
      throw err;
    }
    return made;
  }
  const dirs = Object.fromEntries(
    Object.entries(support.parents).map(([c, parent]) => [c, path.join(parent, name)]),
  ) as { pids: string; memory: string; freezer?: string; cpuacct?: string };
  const made = v1Cgroup(dirs);
  try {
    for (const d of Object.values(dirs)) await mkdir(d);
    await writeFile(path.join(dirs.pids, "pids.max"), String(limits.processes));
    await writeFile(path.join(dirs.memory, "memory.limit_in_bytes"), bytes);
    // Memory + swap capped at the same value: no swap. Absent when swap accounting is off.
    await writeFile(path.join(dirs.memory, "memory.memsw.limit_in_bytes"), bytes).catch(() => {});
  } catch (err) {
    await made.remove();
    throw err;
  }
  return made;
}

/** The per-command cgroup v2 at `dir` (created by the caller). */
export function v2CommandCgroup(dir: string): CommandCgroup {
  const procs = path.join(dir, "cgroup.procs");
  const empty = async () => (await read(procs)).trim() === "";
  const kill = async () => {
    if (await empty()) return;
    await writeFile(path.join(dir, "cgroup.kill"), "1").catch(() => {});
    await until(empty);
  };
  return {
    procsFiles: [procs],
    async hits() {
      const pids = parseKeyed(await read(path.join(dir, "pids.events")));
      const mem = parseKeyed(await read(path.join(dir, "memory.events")));
      const cpu = parseKeyed(await read(path.join(dir, "cpu.stat"))).get("usage_usec");
      return {
        pidsMax: pids.get("max") ?? 0,
        oomKills: mem.get("oom_kill") ?? 0,
        cpuS: cpu === undefined ? null : cpu / 1e6,
      };
    },
    kill,
    remove: async () => {
      await kill().catch(() => {});
      await removeDir(dir);
    },
  };
}

function v1Cgroup(dirs: {
  pids: string;
  memory: string;
  freezer?: string;
  cpuacct?: string;
}): CommandCgroup {
  const pidsOf = async () =>
    (await read(path.join(dirs.pids, "cgroup.procs")))
      .split("\n")
      .map((s) => Number(s))
      .filter((n) => n > 0);
  const empty = async () => (await pidsOf()).length === 0;
  const kill = async () => {
    if (await empty()) return;
    // Frozen, nothing can fork while its pids are read and killed; thawed, SIGKILL is delivered.
    const state = dirs.freezer ? path.join(dirs.freezer, "freezer.state") : null;
    for (let round = 0; round < 50 && !(await empty()); round++) {
      if (state) {
        await writeFile(state, "FROZEN").catch(() => {});
        await until(async () => (await read(state)).trim() === "FROZEN", 1000);
      }
      for (const pid of await pidsOf()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      if (state) await writeFile(state, "THAWED").catch(() => {});
      await until(empty, 200);
    }
  };
  return {
    procsFiles: Object.values(dirs).map((d) => path.join(d, "cgroup.procs")),
    async hits() {
      const pids = parseKeyed(await read(path.join(dirs.pids, "pids.events")));
      const oom = parseKeyed(await read(path.join(dirs.memory, "memory.oom_control")));
      const usage = dirs.cpuacct
        ? (await read(path.join(dirs.cpuacct, "cpuacct.usage"))).trim()
        : "";
      return {
        pidsMax: pids.get("max") ?? 0,
        oomKills: oom.get("oom_kill") ?? 0,
        cpuS: /^\d+$/.test(usage) ? Number(usage) / 1e9 : null,
      };
    },
    kill,
    remove: async () => {
      await kill().catch(() => {});
      for (const d of Object.values(dirs)) await removeDir(d);
    },
  };
}

/** Polls `done` until true or `ms` (bounded: a cgroup that can't empty must not hang the worker). */
async function until(done: () => Promise<boolean>, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

/** rmdir, retried briefly: the last exited processes may still be leaving the cgroup. */
async function removeDir(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") return;
      await sleep(20);
    }
  }
}
