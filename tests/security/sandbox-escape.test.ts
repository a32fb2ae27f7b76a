/**
 * Issue 11, findings 1, 2 and 7, as an attacker runs them: from inside a
 * command of a task, through the real shell tool and the sandbox a worker
 * sets up for an agent (sandboxForAgent), under `bwrap` and under `none`.
 * Each attack must fail; where it can, the same read is shown to work for
 * the worker itself, so a check that proves nothing fails too.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxForAgent, type ShellSandbox } from "../../src/tools/sandbox.ts";
import { sandboxUser } from "../../src/tools/sandbox-user.ts";
import { runShell } from "../../src/tools/shell.ts";
import { processesMatching } from "../workers/worker-harness.ts";

const root = process.getuid?.() === 0;
let workspaceRoot: string;
let mine: string;
let stateDir: string;
const STATE_SECRET = `nats-creds-${randomBytes(6).toString("hex")}`;
let boxed: ShellSandbox;
let open: ShellSandbox;
const logLines: string[] = [];

beforeAll(async () => {
  workspaceRoot = await mkdtemp(path.join(os.tmpdir(), "squad-escape-"));
  mine = path.join(workspaceRoot, "m-escape");
  await mkdir(mine);
  // A fake swarm state directory as the credentials module keeps it: 0700, files 0600.
  stateDir = await mkdtemp(path.join("/var/tmp", "squad-escape-state-"));
  await chmod(stateDir, 0o700);
  await writeFile(path.join(stateDir, "worker.creds"), STATE_SECRET, { mode: 0o600 });
  const log = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    }),
  );
  const env = { ...process.env, SWARM_STATE_DIR: stateDir };
  const base = { agent: "attacker", workspaceRoot, network: false, log, env };
  boxed = await sandboxForAgent({ ...base, requested: "bwrap", requestedBy: "the roster" });
  open = await sandboxForAgent({ ...base, requested: "none", requestedBy: "the roster" });
});

afterAll(async () => {
  for (const d of [workspaceRoot, stateDir]) if (d) await rm(d, { recursive: true, force: true });
});

const sh = (command: string, sandbox: ShellSandbox, timeoutMs = 20_000) =>
  runShell({ command, cwd: mine, timeoutMs, sandbox });

describe("the host's kernel settings", () => {
  it("a task can't set the host's core_pattern (the root-on-host trick) or any sysctl", async () => {
    const before = {
      core: await readFile("/proc/sys/kernel/core_pattern", "utf8"),
      swap: await readFile("/proc/sys/vm/swappiness", "utf8"),
    };
    for (const sb of [boxed, open]) {
      const core = await sh('echo "|/tmp/x" > /proc/sys/kernel/core_pattern', sb);
      expect(core.exit_code, core.output).not.toBe(0);
      expect(core.output).toMatch(/Permission denied|Read-only file system/);
      const swap = await sh("echo 61 > /proc/sys/vm/swappiness", sb);
      expect(swap.exit_code, swap.output).not.toBe(0);
      expect(swap.output).toMatch(/Permission denied|Read-only file system/);
    }
    expect(await readFile("/proc/sys/kernel/core_pattern", "utf8")).toBe(before.core);
    expect(await readFile("/proc/sys/vm/swappiness", "utf8")).toBe(before.swap);
  });

  it("shows no /sys, and /proc/sysrq-trigger can't be written", async () => {
    const r = await sh(
      "ls /sys 2>&1; (echo h > /proc/sysrq-trigger) 2>&1 && echo TRIGGERED; true",
      boxed,
    );
    expect(r.output).toMatch(/ls: cannot access '\/sys': No such file or directory/);
    expect(r.output).not.toContain("TRIGGERED");
  });
});

describe("who a task runs as", () => {
  it.runIf(root)("never uid 0, with or without the sandbox, when the worker is root", async () => {
    const user = sandboxUser()!;
    for (const sb of [boxed, open]) {
      const r = await sh("id -u; id -g; id -G", sb);
      expect(r.exit_code).toBe(0);
      expect(r.output).toBe(`${user.uid}\n${user.gid}\n${user.gid}\n`);
    }
  });

  it.runIf(root)(
    "under sandbox: none the worker's /proc/$PPID/environ is unreadable (it holds the API keys)",
    async () => {
      // This test process plays the worker: $PPID of the command is this process.
      const r = await sh("echo ppid=$PPID; tr '\\0' '\\n' < /proc/$PPID/environ | head -3", open);
      expect(r.output).toContain(`ppid=${process.pid}`);
      expect(r.output).toMatch(/Permission denied/);
      expect(r.output).not.toMatch(/^PATH=/m);
      // The worker itself can: the check above is about the uid, not a missing file.
      expect(await readFile(`/proc/${process.pid}/environ`, "utf8")).toContain("PATH=");
    },
  );
});

describe("what a task can read", () => {
  it("not /etc/shadow, /etc/gshadow, /root, /home, debconf's passwords", async () => {
    const cmd =
      "for f in /etc/shadow /etc/gshadow /var/cache/debconf/passwords.dat; do " +
      'cat "$f" >/dev/null 2>&1 && echo "READ $f"; done; ' +
      'for d in /root /home /var/cache/debconf; do ls "$d" >/dev/null 2>&1 && echo "LISTED $d"; done; echo checked';
    const r = await sh(cmd, boxed);
    expect(r.output).toBe("checked\n");
    if (root) {
      // Without the sandbox the directories exist, but root's files stay root's.
      const n = await sh(cmd, open);
      expect(n.output).not.toMatch(/READ|LISTED \/root/);
      // The worker can read it: a real file whose protection is being tested.
      expect(await readFile("/etc/shadow", "utf8")).toMatch(/^root:/);
    }
  });

  it("not the swarm's state directory (NATS credentials), with or without the sandbox", async () => {
    const cmd = `cat ${stateDir}/worker.creds; ls ${stateDir}`;
    const r = await sh(cmd, boxed);
    expect(r.output).not.toContain(STATE_SECRET);
    expect(r.output).toMatch(/No such file or directory/);
    if (root) {
      const n = await sh(cmd, open);
      expect(n.output).not.toContain(STATE_SECRET);
      expect(n.output).toMatch(/Permission denied/);
    }
    expect(await readFile(path.join(stateDir, "worker.creds"), "utf8")).toBe(STATE_SECRET);
  });

  it("only an allow-listed /etc and no host directories but the system's", async () => {
    const r = await sh("ls /; ls /etc", boxed);
    const [top, etc] = [r.output.split("\n"), r.output];
    expect(top).not.toContain("root");
    expect(top).not.toContain("home");
    expect(top).not.toContain("srv");
    expect(top).not.toContain("run");
    expect(etc).toMatch(/^passwd$/m);
    expect(etc).toMatch(/^resolv\.conf$/m);
    expect(etc).not.toMatch(/^(shadow|gshadow|sudoers|ssh)$/m);
    expect(etc).not.toMatch(/^ssl$[\s\S]*private/m);
  });
});

describe("what a task can still do in the sandbox", () => {
  it("runs node, python3, git, sh and make, and writes its own workspace", async () => {
    const r = await sh(
      [
        "node -e 'console.log(\"node\", typeof process.version)'",
        "python3 -c 'import json, ssl; print(\"python3\")'",
        "git init -q repo && git -C repo -c user.name=t -c user.email=t@t commit -q --allow-empty -m one && git -C repo log --format=%s",
        "sh -c 'echo sh'",
        "printf 'all:\\n\\t@echo make\\n' > Makefile && make",
        "echo tmp > /tmp/t && cat /tmp/t",
      ].join(" && "),
      boxed,
    );
    expect(r.output).toBe("node string\npython3\none\nsh\nmake\ntmp\n");
    expect(r.exit_code).toBe(0);
  });

  it.runIf(root)("changes files the worker put in its workspace as root", async () => {
    await writeFile(path.join(mine, "from-worker.txt"), "root wrote this\n");
    const r = await sh("echo changed >> from-worker.txt && cat from-worker.txt", boxed);
    expect(r.output).toBe("root wrote this\nchanged\n");
  });
});

describe("sandbox: none", () => {
  it("kills every descendant when the command ends, a setsid daemon included", async () => {
    const marker = `setsid-survivor-${randomBytes(4).toString("hex")}`;
    // The command ends only once the daemon runs in its own session (it wrote its pid).
    const daemon =
      `rm -f daemon.pid; setsid bash -c 'echo $$ > daemon.pid; sleep 300; : ${marker}' >/dev/null 2>&1 < /dev/null & ` +
      "while [ ! -s daemon.pid ]; do sleep 0.05; done; echo started";
    const r = await sh(daemon, open);
    expect(r.output).toBe("started\n");
    expect(await processesMatching(marker)).toEqual([]);

    // Without the task's cgroup (a bare runShell), the same daemon outlives the command.
    const bare = await runShell({ command: daemon, cwd: mine, timeoutMs: 20_000 });
    expect(bare.output).toBe("started\n");
    const survivors = await processesMatching(marker);
    expect(survivors.length).toBeGreaterThan(0);
    for (const pid of survivors) process.kill(pid, "SIGKILL");
  });

  it("says in the log what it runs as", () => {
    const line = logLines
      .map((l) => JSON.parse(l) as { msg: string })
      .find((l) => /sandbox: none/.test(l.msg));
    expect(line?.msg).toMatch(root ? /as uid \d+/ : /as this worker's user/);
  });
});

describe("SWARM_TASK_SHARED_DIR", () => {
  it("binds one directory read-write for every task, and nothing else of the host with it", async () => {
    const shared = await mkdtemp(path.join("/var/tmp", "squad-shared-"));
    await chmod(shared, 0o777);
    const sibling = await mkdtemp(path.join("/var/tmp", "squad-sibling-"));
    await writeFile(path.join(sibling, "secret"), "not shared\n");
    await chmod(sibling, 0o755);
    try {
      const env = { ...process.env, SWARM_STATE_DIR: stateDir, SWARM_TASK_SHARED_DIR: shared };
      const log = pino({ level: "silent" });
      const base = { agent: "witness", workspaceRoot, network: false, log, env };
      const withShared = await sandboxForAgent({
        ...base,
        requested: "bwrap",
        requestedBy: "test",
      });
      const w = await sh(`echo ran >> ${shared}/t1.log && cat ${sibling}/secret`, withShared);
      expect(await readFile(path.join(shared, "t1.log"), "utf8")).toBe("ran\n");
      // The directory beside it is not part of the view.
      expect(w.exit_code, w.output).not.toBe(0);
      expect(w.output).not.toMatch(/not shared/);
      // Without the variable the shared directory is not there either.
      const none = await sh(`ls ${shared}`, boxed);
      expect(none.exit_code, none.output).not.toBe(0);
      // Overlapping what tasks must never see is refused.
      for (const bad of [workspaceRoot, stateDir, path.dirname(stateDir), "relative/dir"]) {
        await expect(
          sandboxForAgent({
            ...base,
            env: { ...env, SWARM_TASK_SHARED_DIR: bad },
            requested: "bwrap",
            requestedBy: "test",
          }),
        ).rejects.toThrow(/SWARM_TASK_SHARED_DIR/);
      }
    } finally {
      await rm(shared, { recursive: true, force: true });
      await rm(sibling, { recursive: true, force: true });
    }
  });
});
