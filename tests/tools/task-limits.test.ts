/**
 * The limits' defaults and how they become a command line (pure): the
 * values issue 11 asks for, the order of the wrappers, and how a limit hit
 * is named. The attacks themselves are in tests/security/sandbox-limits.test.ts.
 */
import { describe, expect, it } from "vitest";
import { cgroupPlaces, chooseCgroups, parseKeyed, placementArgs } from "../../src/tools/cgroup.ts";
import { confinedArgv, innerCommand, parseTmpReport } from "../../src/tools/command-line.ts";
import { bwrapArgs, dropArgs } from "../../src/tools/sandbox.ts";
import {
  DEFAULT_LIMITS,
  TaskLimitsSpec,
  limitMessage,
  resolveLimits,
  rlimitArgs,
  rlimitHitFromExit,
} from "../../src/tools/task-limits.ts";
import { parseRoster } from "../../src/workers/roster.ts";

const GiB = 1024 ** 3;

describe("the default limits", () => {
  it("are 256 processes, 2 GiB of memory, 1 GiB per file, a bounded workspace and /tmp, and CPU time", () => {
    expect(DEFAULT_LIMITS).toEqual({
      processes: 256,
      memory_mb: 2048,
      file_mb: 1024,
      workspace_mb: 4096,
      tmp_mb: 512,
      cpu_s: 3600,
    });
  });

  it("become hard rlimits: 1 GiB per file, the CPU seconds, no core files; RLIMIT_NPROC only without cgroups", () => {
    expect(rlimitArgs(DEFAULT_LIMITS)).toEqual([
      "prlimit",
      `--fsize=${GiB}:${GiB}`,
      "--cpu=3600:3601",
      "--core=0:0",
      "--",
    ]);
    expect(rlimitArgs(DEFAULT_LIMITS, { nproc: true })).toContain("--nproc=256:256");
  });

  it("size the sandbox's /tmp (512 MiB by default)", () => {
    const sb = {
      kind: "bwrap" as const,
      bin: "bwrap",
      workspaceRoot: "/w",
      hide: [],
      expose: [],
      network: false,
    };
    const args = bwrapArgs(sb, "/w/m").join(" ");
    expect(args).toContain(`--size ${512 * 1024 * 1024} --tmpfs /tmp`);
    expect(bwrapArgs({ ...sb, limits: resolveLimits({ tmp_mb: 8 }) }, "/w/m").join(" ")).toContain(
      `--size ${8 * 1024 * 1024} --tmpfs /tmp`,
    );
  });
});

describe("per-agent overrides in the roster", () => {
  it("override the defaults field by field", () => {
    expect(resolveLimits({ memory_mb: 64, processes: 32 })).toEqual({
      ...DEFAULT_LIMITS,
      memory_mb: 64,
      processes: 32,
    });
    const roster = parseRoster(
      `agents:
  - name: builder
    description: builds
    persona: You build.
    tools: [run_shell]
    limits: { processes: 32, memory_mb: 64, file_mb: 4, workspace_mb: 16, tmp_mb: 8, cpu_s: 5 }
`,
      "roster.yaml",
    );
    expect(roster.agents[0]?.limits).toEqual({
      processes: 32,
      memory_mb: 64,
      file_mb: 4,
      workspace_mb: 16,
      tmp_mb: 8,
      cpu_s: 5,
    });
  });

  it.each([
    ["zero", "limits: { processes: 0 }", /agents\[0\] \(builder\)\.limits\.processes/],
    ["a fraction", "limits: { memory_mb: 1.5 }", /limits\.memory_mb/],
    ["an unknown key", "limits: { memory: 64 }", /limits: Unrecognized key/],
  ])("refuse %s, naming the field", (_, line, message) => {
    const text = `agents:\n  - name: builder\n    description: b\n    persona: p\n    tools: [run_shell]\n    ${line}\n`;
    expect(() => parseRoster(text, "roster.yaml")).toThrow(message);
    expect(TaskLimitsSpec.safeParse({ cpu_s: -1 }).success).toBe(false);
  });
});

describe("the command line of a confined command", () => {
  it("puts the cgroup placement first, then the network prefix, the rlimits, the uid drop and the command", () => {
    const argv = confinedArgv({
      cgroupProcs: ["/cg/pids/x/cgroup.procs", "/cg/memory/x/cgroup.procs"],
      prefix: ["ip", "netns", "exec", "sq1"],
      rlimits: rlimitArgs(DEFAULT_LIMITS),
      drop: dropArgs({ uid: 65534, gid: 65534 }),
      command: ["bwrap", "--unshare-user", "--", "/bin/true"],
    });
    expect(argv.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(argv.slice(3)).toEqual([
      "squad-cgroup",
      "/cg/pids/x/cgroup.procs",
      "/cg/memory/x/cgroup.procs",
      "--",
      "ip",
      "netns",
      "exec",
      "sq1",
      "prlimit",
      `--fsize=${GiB}:${GiB}`,
      "--cpu=3600:3601",
      "--core=0:0",
      "--",
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--no-new-privs",
      "--",
      "bwrap",
      "--unshare-user",
      "--",
      "/bin/true",
    ]);
    // No cgroup, not root: just the command (and its rlimits).
    expect(confinedArgv({ drop: dropArgs(null), command: ["/bin/bash", "-c", "x"] })).toEqual([
      "/bin/bash",
      "-c",
      "x",
    ]);
  });

  it("hides the /tmp report's descriptor from the command itself", () => {
    const [, , script] = innerCommand("echo hi");
    expect(script).toMatch(/^\/bin\/bash -c "\$1" 4>&-;/);
    expect(placementArgs(["/a"], ["x"])).toEqual([
      "/bin/sh",
      "-c",
      expect.stringContaining("exit 125") as unknown,
      "squad-cgroup",
      "/a",
      "--",
      "x",
    ]);
  });
});

describe("naming the limit that was hit", () => {
  it.each([
    ["processes", /^process limit reached \(limits\.processes = 256\): x$/],
    ["memory", /^memory limit reached \(limits\.memory_mb = 2048\): x$/],
    ["file_size", /^file size limit reached \(limits\.file_mb = 1024\): x$/],
    ["workspace", /^workspace size limit exceeded \(limits\.workspace_mb = 4096\): x$/],
    ["tmp", /^\/tmp size limit reached \(limits\.tmp_mb = 512\): x$/],
    ["cpu", /^CPU time limit reached \(limits\.cpu_s = 3600\): x$/],
  ] as const)("%s", (limit, message) => {
    expect(limitMessage(limit, DEFAULT_LIMITS, "x")).toMatch(message);
  });

  it.each([
    [153, "", "file_size"],
    [1, "OSError: [Errno 27] File too large", "file_size"],
    [137, "bash: line 1: 12 File size limit exceeded (core dumped)", "file_size"],
    [152, "", "cpu"],
    [0, "CPU time limit exceeded", "cpu"],
    [1, "No space left on device", null],
    [137, "Killed", null],
  ] as const)("exit %s with %j: %s", (code, output, expected) => {
    expect(rlimitHitFromExit(code, output)).toBe(expected);
  });

  it("or the signal that ended it", () => {
    expect(rlimitHitFromExit(null, "", "SIGXCPU")).toBe("cpu");
    expect(rlimitHitFromExit(null, "", "SIGXFSZ")).toBe("file_size");
    expect(rlimitHitFromExit(null, "", "SIGKILL")).toBeNull();
  });

  it("reads the kernel's counters and the /tmp report", () => {
    expect(parseKeyed("max 3\n")).toEqual(new Map([["max", 3]]));
    expect(parseKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").get("oom_kill")).toBe(2);
    expect(parseKeyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n").get("oom_kill")).toBe(1);
    expect(parseTmpReport("noise\ntmp 2048 0 4096\n")).toEqual({ total: 8 * 1024 * 1024, free: 0 });
    expect(parseTmpReport("")).toBeNull();
  });
});

describe("finding the cgroups", () => {
  const hybridMounts = [
    "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755",
    "31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    "35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "38 30 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer",
    "39 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
    "40 30 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  ].join("\n");
  const hybridSelf = "8:pids:/\n6:freezer:/\n4:memory:/api/c1\n2:cpu,cpuacct:/\n0::/\n";

  it("joins each hierarchy's mount point with this process's path in it", () => {
    expect(cgroupPlaces(hybridMounts, hybridSelf)).toEqual({
      v2: "/sys/fs/cgroup/unified",
      v1: {
        memory: "/sys/fs/cgroup/memory/api/c1",
        freezer: "/sys/fs/cgroup/freezer",
        pids: "/sys/fs/cgroup/pids",
        cpuacct: "/sys/fs/cgroup/cpu,cpuacct",
      },
    });
  });

  it("strips the mount's own root (a container sees its cgroup as /)", () => {
    const mounts = "50 40 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
    expect(cgroupPlaces(mounts, "0::/docker/abc/worker\n").v2).toBe("/sys/fs/cgroup/worker");
    expect(cgroupPlaces(mounts, "0::/elsewhere\n").v2).toBeUndefined();
  });

  it("chooses v2 with memory and pids, else v1 with both, else says why not", () => {
    const places = cgroupPlaces(hybridMounts, hybridSelf);
    // This machine's layout: a cgroup2 hierarchy without controllers, the controllers on v1.
    expect(chooseCgroups(places, ["hugetlb"])).toEqual({
      version: 1,
      parents: {
        pids: "/sys/fs/cgroup/pids",
        memory: "/sys/fs/cgroup/memory/api/c1",
        freezer: "/sys/fs/cgroup/freezer",
        cpuacct: "/sys/fs/cgroup/cpu,cpuacct",
      },
    });
    const pureV2 = { v2: "/sys/fs/cgroup/system.slice/squad.service", v1: {} };
    expect(chooseCgroups(pureV2, ["cpu", "memory", "pids"])).toEqual({
      version: 2,
      parent: "/sys/fs/cgroup/system.slice/squad.service",
    });
    expect(chooseCgroups(pureV2, ["cpu"], "/sys/fs/cgroup/delegated")).toMatchObject({
      reason: expect.stringMatching(
        /^SWARM_CGROUP=\/sys\/fs\/cgroup\/delegated is not a cgroup v2 directory with the memory and pids controllers \(has: cpu\)/,
      ) as unknown,
    });
    expect(chooseCgroups({ v1: {} }, null)).toEqual({
      reason: "no cgroup hierarchy is mounted (/sys/fs/cgroup)",
    });
  });
});
