/**
 * `swarm deploy` (what scripts/deploy-swarm runs) as a real process against a
 * test nats-server, or against the nats-server it starts itself.
 */
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsAnswers } from "../../src/bus/index.ts";
import { freePort, startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import {
  CLI_ENTRY,
  REPO_ROOT,
  killAllSwarms,
  runSwarm,
  spawnSwarm,
  swarmEnv,
} from "../helpers/swarm-process.ts";

// Built from strings: the lint rule forbids control characters in regex literals.
const CURSOR_UP = new RegExp(String.raw`\r\u001b\[\d+A`);
const ANSI_CODE = new RegExp(String.raw`\u001b\[[0-9;?]*[A-Za-z]`, "g");
const DEMO = path.join(REPO_ROOT, "mission-briefs/demo-library.md");
const dirs: string[] = [];
let nats: NatsServerHandle;

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  await killAllSwarms();
});
afterAll(async () => {
  await killAllSwarms();
  await nats?.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true, maxRetries: 3 })));
});

async function tempDir(prefix = "squad-deploy-"): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function writeBrief(text: string): Promise<string> {
  const file = path.join(await tempDir("squad-brief-"), "brief.md");
  await writeFile(file, text);
  return file;
}

const TINY = `---
title: Tiny
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: hello
          agent: builder
          title: Say hello
          run: ["echo hello > hello.txt"]
          verify: ["test -s hello.txt"]
---
One task, no model.
`;

interface Summary {
  mission_id: string;
  status: string;
  tasks: { total: number; succeeded: number; failed: number };
  duration_ms: number;
  report: string | null;
  usage: { input_tokens: number; output_tokens: number };
}

function onlyJsonLine(stdout: string): Summary {
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Summary;
}

/** Every child the launcher said it started (supervisor notices). */
function startedPids(output: string): Map<string, number> {
  const pids = new Map<string, number>();
  for (const m of output.matchAll(/ (\S+) (?:started|restarted) \(pid (\d+)/g)) {
    pids.set(`${m[1]}@${m[2]}`, Number(m[2]));
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * The files a mission produced: its head written out by `swarm export` (git workspaces),
 * or, for a mission that recorded no repository, the shared mission directory.
 */
async function missionFiles(ws: string, missionId: string): Promise<string> {
  const dir = path.join(ws, `export-${missionId}`);
  const r = await runSwarm(["export", missionId, dir], swarmEnv(nats.url, ws));
  if (r.code === 0) return dir;
  expect(r.stderr).toMatch(/without git workspaces/);
  return path.join(ws, missionId);
}

describe("swarm deploy", () => {
  it("runs the demo brief to completion: the built library, the report, one JSON line", async () => {
    const ws = await tempDir();
    const r = await runSwarm(["deploy", DEMO, "--replicas", "1", "--json"], swarmEnv(nats.url, ws));
    expect(r.code, r.stderr).toBe(0);
    const summary = onlyJsonLine(r.stdout);
    expect(summary).toMatchObject({
      status: "completed",
      tasks: { total: 8, succeeded: 8, failed: 0 },
      usage: { input_tokens: 0, output_tokens: 0 },
      report: path.join(ws, "reports", `${summary.mission_id}.md`),
    });
    expect(summary.duration_ms).toBeGreaterThan(0);

    const lib = path.join(await missionFiles(ws, summary.mission_id), "textkit");
    expect(await readFile(path.join(lib, "test-report.txt"), "utf8")).toContain("# pass 6");
    expect(await readFile(path.join(lib, "README.md"), "utf8")).toMatch(/slugify[\s\S]*wordCount/);
    expect(await readFile(path.join(lib, "src/index.js"), "utf8")).toContain("slugify");
    expect(await readFile(summary.report!, "utf8")).toContain("**completed**");
    const reportJson = JSON.parse(
      await readFile(path.join(ws, "reports", `${summary.mission_id}.json`), "utf8"),
    ) as { tasks: { total: number } };
    expect(reportJson.tasks.total).toBe(8);

    // Progress went to stderr (stdout is the JSON line), the processes' logs to files.
    expect(r.stderr).toContain(`nats: ${nats.url} (already running)`);
    expect(r.stderr).toMatch(/mission_completed +completed: 8\/8 tasks/);
    expect(r.stderr).toContain(`✔ mission ${summary.mission_id} completed`);
    for (const name of ["orchestrator", "builder-1", "tester-1", "docs_writer-1"]) {
      expect(await exists(path.join(ws, "logs", `${name}.log`)), name).toBe(true);
    }
    const pids = [...startedPids(r.stderr).values()];
    expect(pids).toHaveLength(4);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("starts its own nats-server when none answers, and stops it at the end", async () => {
    const ws = await tempDir();
    const url = `nats://127.0.0.1:${await freePort()}`;
    // Through the script a person runs (it sets up Node and packages, then runs `deploy`).
    const r = await runSwarm(
      [await writeBrief(TINY), "--replicas", "1", "--json"],
      swarmEnv(url, ws),
      { command: path.join(REPO_ROOT, "scripts/deploy-swarm") },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(onlyJsonLine(r.stdout)).toMatchObject({
      status: "completed",
      tasks: { total: 1, succeeded: 1, failed: 0 },
    });
    expect(r.stderr).toContain(`nats: ${url} (started here)`);
    const natsPid = Number(/nats-server started \(pid (\d+)\)/.exec(r.stderr)?.[1]);
    expect(natsPid).toBeGreaterThan(0);
    expect(alive(natsPid)).toBe(false);
    expect(await natsAnswers(url)).toBe(false);
    expect(await exists(path.join(ws, ".nats", "jetstream"))).toBe(true);
    expect([...startedPids(r.stderr).values()].filter(alive)).toEqual([]);
  });

  it("exits 3 with the install hint when no NATS answers and none can be started", async () => {
    const ws = await tempDir();
    const url = `nats://127.0.0.1:${await freePort()}`;
    const r = await runSwarm(
      ["deploy", await writeBrief(TINY)],
      swarmEnv(url, ws, {
        NATS_SERVER_BIN: "/nonexistent",
        PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`,
      }),
    );
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("NATS_SERVER_BIN=/nonexistent is not an executable file");
    expect(r.stderr).toContain("apt-get install nats-server");
    expect(await exists(path.join(ws, "logs", "orchestrator.log"))).toBe(false);
  });

  it("exits 2 naming the problem for a bad brief or flag, before starting anything", async () => {
    const ws = await tempDir();
    const bad = await writeBrief(TINY.replace("agent: builder", "agent: wizard"));
    const r = await runSwarm(["deploy", bad], swarmEnv(nats.url, ws));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid brief .*brief\.md.*line \d+: plan: .*wizard/s);
    expect(await exists(path.join(ws, "logs"))).toBe(false);

    const missing = await runSwarm(["deploy", path.join(ws, "nope.md")], swarmEnv(nats.url, ws));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read brief");

    const flag = await runSwarm(["deploy", DEMO, "--replicas", "0"], swarmEnv(nats.url, ws));
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--replicas must be a positive integer");

    const noPlan = await writeBrief("---\ntitle: Plan it yourself\n---\nBuild a thing.\n");
    const planless = await runSwarm(
      ["deploy", noPlan],
      swarmEnv(nats.url, ws, { SWARM_PLANNER_MODEL: undefined }),
    );
    expect(planless.code).toBe(2);
    expect(planless.stderr).toContain("set SWARM_PLANNER_MODEL");
  });

  it("exits 3 at once when a model the brief needs has no server answering", async () => {
    const ws = await tempDir();
    const port = await freePort();
    const brief = await writeBrief(
      TINY.replace('run: ["echo hello > hello.txt"]', "instructions: Write hello.txt"),
    );
    const r = await runSwarm(
      ["deploy", brief],
      swarmEnv(nats.url, ws, {
        OLLAMA_HOST: `127.0.0.1:${port}`,
        SWARM_WORKER_MODEL: "ollama:qwen2.5:7b",
      }),
    );
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`http://127.0.0.1:${port} does not answer`);
    expect(r.stderr).toContain("agent builder (ollama:qwen2.5:7b)");
    expect(await exists(path.join(ws, "logs"))).toBe(false);
  });

  it("restarts a worker killed during the run, and the mission completes", async () => {
    const ws = await tempDir();
    const brief = await writeBrief(`---
title: Slow then check
plan:
  waves:
    - wave: 1
      tasks:
        - id: slow
          agent: builder
          title: Take a while
          run: ["sleep 3", "echo done > slow.txt"]
    - wave: 2
      tasks:
        - id: check
          agent: tester
          title: Check it
          run: ["grep -q done slow.txt"]
---
The tester replica is killed while the builder works; its restart runs the check.
`);
    const p = spawnSwarm(["deploy", brief, "--replicas", "1", "--json"], swarmEnv(nats.url, ws));
    await p.waitFor(/task_started +slow started on builder/, 60_000);
    const testerPid = Number(/tester-1 started \(pid (\d+)\)/.exec(p.stderr())?.[1]);
    expect(testerPid).toBeGreaterThan(0);
    process.kill(testerPid, "SIGKILL");
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(0);
    expect(p.stderr()).toContain(`tester-1 (pid ${testerPid}) exited: signal SIGKILL`);
    expect(p.stderr()).toMatch(/tester-1 restarted \(pid \d+, restart 1\)/);
    expect(p.stderr()).toMatch(/task_completed +check completed on tester\//);
    expect(onlyJsonLine(p.stdout())).toMatchObject({
      status: "completed",
      tasks: { total: 2, succeeded: 2, failed: 0 },
    });
    expect([...startedPids(p.stderr()).values()].filter(alive)).toEqual([]);
  });

  it("Ctrl-C cancels the mission, then stops every child; exit 1 with status cancelled", async () => {
    const ws = await tempDir();
    const brief = await writeBrief(
      TINY.replace('run: ["echo hello > hello.txt"]', 'run: ["sleep 60"]'),
    );
    const p = spawnSwarm(["deploy", brief, "--replicas", "1", "--json"], swarmEnv(nats.url, ws));
    await p.waitFor(/task_started +hello started on builder/, 60_000);
    p.kill("SIGINT");
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(1);
    const summary = onlyJsonLine(p.stdout());
    expect(summary).toMatchObject({ status: "cancelled", tasks: { total: 1, succeeded: 0 } });
    expect(p.stderr()).toMatch(/cancel requested by deploy-swarm: interrupted \(SIGINT\)/);
    expect(p.stderr()).toMatch(/mission_cancelled +cancelled: interrupted \(SIGINT\)/);
    expect([...startedPids(p.stderr()).values()].filter(alive)).toEqual([]);
  });

  it("on a terminal, redraws the progress in place and ends with the summary", async () => {
    const ws = await tempDir();
    const brief = await writeBrief(TINY);
    const cmd = [process.execPath, CLI_ENTRY, "deploy", brief, "--replicas", "1"]
      .map((a) => `'${a}'`)
      .join(" ");
    // util-linux `script` runs the command on a pseudo-terminal and copies what it draws.
    const r = await runSwarm(
      ["-qfec", cmd, "/dev/null"],
      swarmEnv(nats.url, ws, { TERM: "xterm" }),
      { command: "script" },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("\x1b[?25l"); // cursor hidden while drawing
    expect(r.stdout).toMatch(CURSOR_UP); // back up over the previous frame
    expect(r.stdout).toContain("\x1b[2K"); // each line cleared before it is redrawn
    expect(r.stdout).toContain("\x1b[?25h"); // cursor shown again at the end
    const plain = r.stdout.replace(ANSI_CODE, "");
    expect(plain).toMatch(/✔ hello +builder +builder-1 +succeeded/);
    expect(plain).toMatch(/✔ mission m-\S+ completed: 1\/1 tasks succeeded, 0 failed in/);
    expect(plain).toMatch(/report: \S+\/reports\/m-\S+\.md/);
    expect(plain).not.toMatch(/"level":/); // no log line broke into the view
  });
});
