/**
 * The bwrap sandbox of shell commands, on this machine's real bubblewrap.
 * Every escape is tried twice: in the sandbox, where it must fail, and with
 * no sandbox, where the same command must work (or the leak show), so a
 * sandbox that silently does nothing fails these tests.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import {
  bwrapArgs,
  prepareBwrapSandbox,
  probeBwrap,
  resolveSandbox,
  sandboxForAgent,
  sandboxUnavailable,
  type ShellSandbox,
} from "../../src/tools/sandbox.ts";
import { runShell, type ShellOptions } from "../../src/tools/shell.ts";
import { unusedPort } from "../helpers/fake-ollama.ts";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { processesMatching } from "../workers/worker-harness.ts";

let root: string;
let outside: string;
let mine: string;
let other: string;
let boxed: ShellSandbox;
let netBoxed: ShellSandbox;
let bwrapBin: string;

const OTHER_SECRET = `other-mission-${randomBytes(6).toString("hex")}`;

beforeAll(async () => {
  const probe = await probeBwrap();
  // The machine this suite runs on has bubblewrap (scripts/lib/setup.sh installs it).
  expect(probe, "bwrap must work here for these tests").toMatchObject({ ok: true });
  bwrapBin = probe.bin!;
  root = await mkdtemp(path.join(os.tmpdir(), "squad-sbx-root-"));
  // Outside the workspace root and outside /tmp (which the sandbox replaces with its own).
  outside = await mkdtemp(path.join("/var/tmp", "squad-sbx-outside-"));
  // The sandbox user (when this runs as root) must reach the test's fake bwrap binaries.
  await chmod(outside, 0o711);
  mine = path.join(root, "mission-a");
  other = path.join(root, "mission-b");
  await mkdir(mine);
  await mkdir(other);
  await writeFile(path.join(other, "secret.txt"), OTHER_SECRET);
  const common = { bin: bwrapBin, workspaceRoot: root, path: process.env.PATH ?? "/usr/bin:/bin" };
  boxed = await prepareBwrapSandbox({ ...common, network: false });
  netBoxed = await prepareBwrapSandbox({ ...common, network: true });
});

afterAll(async () => {
  for (const d of [root, outside]) if (d) await rm(d, { recursive: true, force: true });
});

function sh(command: string, sandbox?: ShellSandbox, extra: Partial<ShellOptions> = {}) {
  return runShell({
    command,
    cwd: mine,
    timeoutMs: 20_000,
    ...(sandbox ? { sandbox } : {}),
    ...extra,
  });
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe("the bwrap sandbox", () => {
  it("lets a command write its own workspace and nothing outside it", async () => {
    const target = path.join(outside, "written-from-sandbox");
    const r = await sh(`echo inside > made.txt && echo out > ${target}`, boxed);
    expect(r.exit_code).not.toBe(0);
    // Not even there: /var is not part of the sandbox's view of the system.
    expect(r.output).toMatch(/No such file or directory/);
    expect(await readFile(path.join(mine, "made.txt"), "utf8")).toBe("inside\n");
    expect(await exists(target)).toBe(false);
    // Nor the system, nor a sibling mission (hidden), nor the workspace root.
    const sys = await sh(
      `touch /usr/squad-sbx-${process.pid}; touch ${other}/planted; touch ${root}/planted; ls ${root}`,
      boxed,
    );
    expect(sys.output).toMatch(/touch: cannot touch '\/usr\/squad-sbx-\d+': Read-only file system/);
    expect(await exists(path.join(other, "planted"))).toBe(false);
    expect(await exists(path.join(root, "planted"))).toBe(false);
    expect(await exists(`/usr/squad-sbx-${process.pid}`)).toBe(false);

    // Unconfined, the same write lands: the check above can fail.
    const open = await sh(`echo out > ${target}`);
    expect(open.exit_code).toBe(0);
    expect(await readFile(target, "utf8")).toBe("out\n");
  });

  it("hides the other missions' workspaces", async () => {
    const cmd = `ls ${root}; cat ${other}/secret.txt; cat ../mission-b/secret.txt`;
    const r = await sh(cmd, boxed);
    expect(r.output).not.toContain(OTHER_SECRET);
    expect(r.output.split("\n")[0]).toBe("mission-a"); // the root holds only this mission
    expect(r.output).toMatch(/No such file or directory/);

    const open = await sh(cmd);
    expect(open.output).toContain(OTHER_SECRET);
  });

  it("refuses network connections, and with network: true still none to the host (task-network.test.ts)", async () => {
    const received: string[] = [];
    const server = net.createServer((sock) => {
      sock.on("data", (d) => received.push(d.toString()));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const cmd = (tag: string) => `exec 3<>/dev/tcp/127.0.0.1/${port} && echo ${tag} >&3`;
      const r = await sh(cmd("from-sandbox"), boxed);
      expect(r.exit_code).not.toBe(0);
      expect(r.output).toMatch(/Connection refused|Network is unreachable/);

      // network: true is outbound only: its own namespace, the host's loopback out of reach.
      const allowed = await sh(cmd("allowed-by-policy"), netBoxed);
      expect(allowed.exit_code).not.toBe(0);
      expect(allowed.output).toMatch(/Connection refused/);

      const open = await sh(cmd("unconfined"));
      expect(open.exit_code).toBe(0);
      await expect.poll(() => received.join("")).toContain("unconfined");
      expect(received.join("")).not.toContain("from-sandbox");
      expect(received.join("")).not.toContain("allowed-by-policy");
    } finally {
      server.close();
    }
  });

  it("shows the command no process of the host: the worker's /proc/<pid>/environ is out of reach", async () => {
    // This test process plays the worker; its environment is on /proc for its own user.
    const cmd = `tr '\\0' '\\n' < /proc/${process.pid}/environ | grep -c '^PATH='; tr '\\0' ' ' < /proc/$PPID/cmdline`;
    const r = await sh(cmd, boxed);
    expect(r.output).toMatch(/No such file or directory\n0\n/);
    expect(r.output).toContain("squad-sh"); // $PPID is the sandbox's own shell
    const pids = await sh("ls /proc | grep -E '^[0-9]+$' | wc -l", boxed);
    expect(Number(pids.output.trim())).toBeLessThan(10);

    const open = await sh(cmd);
    expect(open.output).toMatch(/^1\n/);
  });

  it("runs with no capabilities, so root inside can't remount / read-write", async () => {
    const r = await sh(
      "grep CapEff /proc/self/status; mount -o remount,rw / && echo REMOUNTED",
      boxed,
    );
    expect(r.output).toMatch(/CapEff:\s+0+\n/);
    expect(r.output).not.toContain("REMOUNTED");
  });

  it("gives commands a private /tmp and HOME = the workspace", async () => {
    const r = await sh("echo $HOME $TMPDIR; touch /tmp/private && ls /tmp", boxed);
    expect(r.exit_code).toBe(0);
    expect(r.output.split("\n")[0]).toBe(`${await realDir(mine)} /tmp`);
    expect(r.output).toContain("private");
    expect(await exists("/tmp/private")).toBe(false);
  });

  it("leaves nothing running: background jobs die with the command, timeouts kill the whole sandbox", async () => {
    const marker = `sbx-marker-${randomBytes(4).toString("hex")}`;
    const r = await sh(`bash -c 'sleep 300; :' ${marker} & echo started`, boxed);
    expect(r.output).toBe("started\n");
    expect(await processesMatching(marker)).toEqual([]);

    const slow = await sh(`bash -c 'sleep 300; :' ${marker}`, boxed, { timeoutMs: 500 });
    expect(slow.timed_out).toBe(true);
    expect(await processesMatching(marker)).toEqual([]);
  });

  it("shows an allow-list of the system, read-only, the mission's workspace last, hidden paths after", () => {
    const args = bwrapArgs(
      {
        kind: "bwrap",
        bin: "bwrap",
        workspaceRoot: "/home/u/ws",
        system: [{ bind: "/usr" }, { symlink: "/bin", target: "usr/bin" }, { bind: "/etc/passwd" }],
        hide: ["/home/u/ws", "/home/u/.nvm/state"],
        expose: ["/home/u/.nvm/versions/node/v24", "/home/u/.nvm"],
        network: false,
      },
      "/home/u/ws/m1",
    );
    const joined = args.join(" ");
    expect(joined).toBe(
      "--unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try --unshare-net " +
        "--ro-bind /usr /usr --symlink usr/bin /bin --ro-bind /etc/passwd /etc/passwd " +
        "--dev /dev --proc /proc --size 536870912 --tmpfs /tmp --dir /var --symlink ../tmp /var/tmp " +
        "--ro-bind-try /home/u/.nvm/versions/node/v24 /home/u/.nvm/versions/node/v24 " +
        "--ro-bind-try /home/u/.nvm /home/u/.nvm " +
        "--tmpfs /home/u/ws --bind /home/u/ws/m1 /home/u/ws/m1 " +
        // A hidden path inside something bound is covered; the workspace root already is.
        "--tmpfs /home/u/.nvm/state " +
        "--die-with-parent --cap-drop ALL --chdir /home/u/ws/m1",
    );
    // Nothing of the host's root is bound as a whole.
    expect(joined).not.toMatch(/--(ro-)?bind \/ \//);
    const networked = bwrapArgs(
      { kind: "bwrap", bin: "bwrap", workspaceRoot: "/w", hide: [], expose: [], network: true },
      "/w/m",
    );
    expect(networked).not.toContain("--unshare-net");
    expect(networked).toContain("--unshare-user");
  });
});

describe("choosing the sandbox", () => {
  const works = { ok: true as const, bin: "/usr/bin/bwrap", version: "bubblewrap 0.8.0" };
  const broken = { ok: false as const, bin: null, reason: "bwrap is not installed" };

  it("uses bwrap by default where it works, and falls back to none only when nobody asked for bwrap", () => {
    expect(resolveSandbox(undefined, works)).toMatchObject({ mode: "bwrap" });
    expect(resolveSandbox("bwrap", works)).toMatchObject({ mode: "bwrap" });
    expect(resolveSandbox("none", works)).toEqual({ mode: "none", requested: "none" });
    expect(resolveSandbox(undefined, broken)).toEqual({
      mode: "none",
      requested: "default",
      reason: "bwrap is not installed",
    });
    expect(resolveSandbox("bwrap", broken)).toEqual({ error: "bwrap is not installed" });
  });

  it("probes the real binary: a missing one is reported, not assumed", async () => {
    expect(await probeBwrap("/nonexistent/bwrap")).toEqual({
      ok: false,
      bin: "/nonexistent/bwrap",
      reason: "/nonexistent/bwrap is not an executable file",
    });
    // A binary that exists but can't sandbox (here: `false`) fails the trial run.
    expect(await probeBwrap("/bin/false")).toMatchObject({
      ok: false,
      reason: /sandboxed `true` failed/,
    });
    // What a failing bwrap says (here on stderr) is the reason given, not just its exit code.
    const refusing = path.join(outside, "refusing-bwrap");
    await writeFile(
      refusing,
      "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    expect(await probeBwrap(refusing)).toEqual({
      ok: false,
      bin: refusing,
      reason: "a sandboxed `true` failed: bwrap: No permissions to create new namespace",
    });
    // A sandbox that runs but does not confine is refused, saying what it let through:
    // here bwrap entered as root (no drop to the sandbox user), which leaves /proc/sys writable.
    if (process.getuid?.() === 0) {
      const unsafe = await probeBwrap(bwrapBin, null);
      expect(unsafe.ok).toBe(false);
      expect(!unsafe.ok && unsafe.reason).toMatch(
        /^the sandbox does not confine here: \/proc\/sys\/kernel\/core_pattern is writable; \/proc\/sys\/vm\/swappiness is writable; .*the command runs as uid 0 from inside it \(bwrap was entered as root/,
      );
      // And a worker asked for bwrap refuses to start on it, with that reason.
      expect(
        sandboxUnavailable("builder", "the roster", (unsafe as { reason: string }).reason).message,
      ).toMatch(/bubblewrap can't run here: the sandbox does not confine here/);
    }
    // The working one reports its version (shown in the worker's log).
    expect(await probeBwrap(bwrapBin)).toMatchObject({
      ok: true,
      version: expect.stringMatching(/^bubblewrap \d/) as unknown,
    });
  });

  it("refuses an explicit bwrap it can't have, and warns loudly when the default falls back", async () => {
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
    const base = {
      agent: "builder",
      workspaceRoot: root,
      network: false,
      log,
      bwrapBin: "/nonexistent/bwrap",
    };
    const err = await sandboxForAgent({
      ...base,
      requested: "bwrap",
      requestedBy: "the roster",
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(
      /agent builder: the roster asks for sandbox: bwrap, but bubblewrap can't run here: .*apt-get install bubblewrap.*sandbox: none/,
    );
    expect(
      await sandboxForAgent({ ...base, requested: undefined, requestedBy: "SWARM_SANDBOX" }),
    ).toMatchObject({ kind: "none" });
    const warning = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((l) => /NO SANDBOX/.test(l.msg));
    expect(warning?.level).toBe(50); // error level: it must stand out in the log
    expect(warning?.msg).toMatch(/run unconfined/);
  });
});

describe("swarm worker and the sandbox", () => {
  it("refuses to start (exit 2, before asking NATS) when the roster asks for bwrap it can't have", async () => {
    const roster = path.join(outside, "roster.yaml");
    await writeFile(
      roster,
      "agents:\n  - name: builder\n    description: builds\n    persona: You build.\n    tools: [run_shell]\n    sandbox: bwrap\n",
    );
    const nowhere = `nats://127.0.0.1:${await unusedPort()}`;
    const env = swarmEnv(nowhere, root, {
      SWARM_ROSTER: roster,
      SWARM_BWRAP_BIN: "/nonexistent/bwrap",
    });
    const r = await runSwarm(["worker", "--agent", "builder"], env, { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /agent builder: the roster asks for sandbox: bwrap, but bubblewrap can't run here: \/nonexistent\/bwrap is not an executable file/,
    );
    // The machine-wide default asks the same way; a bad value is bad input too.
    const viaEnv = await runSwarm(["worker", "--agent", "builder"], {
      ...env,
      SWARM_ROSTER: undefined,
      SWARM_SANDBOX: "bwrap",
    });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toMatch(/SWARM_SANDBOX asks for sandbox: bwrap/);
    const typo = await runSwarm(["worker", "--agent", "builder"], {
      ...env,
      SWARM_ROSTER: undefined,
      SWARM_SANDBOX: "bubblewrap",
    });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/SWARM_SANDBOX must be bwrap or none/);
  });
});

async function realDir(p: string): Promise<string> {
  const { realpath } = await import("node:fs/promises");
  return realpath(p);
}
