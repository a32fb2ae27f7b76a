/**
 * Planted secrets: the orchestrator and two workers (one sandboxed, one with
 * `sandbox: none`) run with OPENAI_API_KEY, NATS_PASS and a custom
 * SWARM_SECRET_* in their environment, and a mission whose commands try to
 * print the environment and the worker's /proc/$PPID/environ. No event, no
 * log line and no report may contain a secret. The unsandboxed worker's raw
 * files show the leak the redaction has to catch (so this test can fail).
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportPaths } from "../../src/config.ts";
import {
  killAllSwarms,
  runSwarm,
  spawnSwarm,
  swarmEnv,
  type SwarmProcess,
} from "../helpers/swarm-process.ts";
import { startBus, type Bus } from "../workers/worker-harness.ts";

const SECRETS = {
  OPENAI_API_KEY: `sk-planted-${randomBytes(10).toString("hex")}`,
  NATS_PASS: `natspass-${randomBytes(10).toString("hex")}`,
  SWARM_SECRET_DEPLOY_KEY: `deploykey-${randomBytes(10).toString("hex")}`,
};
const VALUES = Object.values(SECRETS);

const ROSTER = `
agents:
  - name: boxed
    description: runs commands in the bwrap sandbox
    persona: You run commands.
    tools: [run_shell]
    sandbox: bwrap
  - name: open
    description: runs commands unconfined
    persona: You run commands.
    tools: [run_shell]
    sandbox: none
`;

const steps = (p: string) => [
  `env > ${p}-env.txt; cat ${p}-env.txt`,
  `echo "key=[$OPENAI_API_KEY] pass=[$NATS_PASS] custom=[$SWARM_SECRET_DEPLOY_KEY]"`,
  `tr '\\0' '\\n' < /proc/$PPID/environ > ${p}-ppid.txt 2>&1; cat ${p}-ppid.txt; true`,
  // planted.env: the secrets in a file of the mission (its base, from the brief's workspace),
  // so a command prints them whatever the sandbox, and the redaction has something to catch.
  `grep -h -E 'OPENAI_API_KEY|NATS_PASS|SWARM_SECRET' ${p}-ppid.txt planted.env; true`,
];

const BRIEF = `---
title: Try to leak the worker's secrets
agents: [boxed, open]
workspace: ./seed
plan:
  strategy: Print the environment every way a command can.
  waves:
    - wave: 1
      rationale: Both sandboxes at once.
      tasks:
${["boxed", "open"]
  .map(
    (a) => `        - id: leak-${a}
          agent: ${a}
          title: Print secrets (${a})
          instructions: Print the environment.
          acceptance: Nothing secret is printed.
          run:
${steps(a)
  .map((s) => `            - ${JSON.stringify(s)}`)
  .join("\n")}`,
  )
  .join("\n")}
---
Print the environment.
`;

let bus: Bus;
let dir: string;
const procs: SwarmProcess[] = [];

beforeAll(async () => {
  bus = await startBus();
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-secrets-"));
  await writeFile(path.join(dir, "roster.yaml"), ROSTER);
  await writeFile(path.join(dir, "brief.md"), BRIEF);
  await mkdir(path.join(dir, "seed"));
  await writeFile(
    path.join(dir, "seed", "planted.env"),
    Object.entries(SECRETS)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(""),
  );
});

afterAll(async () => {
  await killAllSwarms();
  await bus?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("planted secrets", () => {
  it("reach no event, no log line and no report; the sandbox hides them even from the raw output", async () => {
    const env = swarmEnv(bus.server.url, bus.workspace, {
      ...SECRETS,
      SWARM_ROSTER: path.join(dir, "roster.yaml"),
      SWARM_LOG_LEVEL: "debug",
    });
    procs.push(spawnSwarm(["orchestrator"], env));
    for (const agent of ["boxed", "open"]) {
      const p = spawnSwarm(["worker", "--agent", agent], env);
      procs.push(p);
      await Promise.race([
        bus.events.waitFor("agent_online", (e) => e.payload.pid === p.pid, 30_000),
        p.exited.then(({ code }) => {
          throw new Error(`${agent} worker exited (${code}):\n${p.stderr().slice(-3000)}`);
        }),
      ]);
    }
    const submit = await runSwarm(["submit", path.join(dir, "brief.md"), "--wait"], env);
    expect(submit.code, `${submit.stdout}\n${submit.stderr}`).toBe(0);
    const mission = submit.stdout.split("\n")[0]!.trim();

    // What the tasks wrote: the mission's head (git workspaces), else its shared directory.
    const exported = path.join(dir, `export-${mission}`);
    const exp = await runSwarm(["export", mission, exported], env);
    if (exp.code !== 0) expect(exp.stderr).toMatch(/without git workspaces/);
    const files = exp.code === 0 ? exported : path.join(bus.workspace, mission);
    const ws = (f: string) => readFile(path.join(files, f), "utf8");
    if (process.getuid?.() === 0) {
      // A root worker runs even sandbox: none commands as the sandbox user: its environment is not theirs.
      const read = bus.events.of(
        "task_progress",
        (e) => e.task_id === "leak-open" && String(e.payload.step.args.command).startsWith("tr "),
      )[0];
      expect(read?.payload.step.output).toMatch(/\/proc\/\d+\/environ: Permission denied/);
      expect(await ws("open-ppid.txt").catch(() => "not written")).toBe("not written");
    } else {
      const openPpid = await ws("open-ppid.txt");
      // The leak is real: unconfined, as the worker's own user, the command reads its environment.
      for (const v of VALUES) expect(openPpid).toContain(v);
    }
    // In the sandbox, $PPID is the sandbox's own init with the command's allow-listed environment.
    const boxedPpid = await ws("boxed-ppid.txt");
    expect(boxedPpid).toMatch(/^PATH=/m);
    for (const v of VALUES) expect(boxedPpid).not.toContain(v);
    for (const f of ["boxed-env.txt", "open-env.txt"]) {
      const text = await ws(f);
      for (const v of VALUES) expect(text).not.toContain(v);
      expect(text).not.toMatch(/OPENAI_API_KEY|NATS_PASS|SWARM_SECRET/);
    }

    // Events: what everyone watching the bus sees.
    const events = bus.events.all.filter((e) => e.mission_id === mission);
    expect(events.map((e) => e.type)).toContain("mission_completed");
    const wire = JSON.stringify(bus.events.all);
    for (const v of VALUES) expect(wire).not.toContain(v);
    const openGrep = events.find(
      (e) =>
        e.type === "task_progress" &&
        e.task_id === "leak-open" &&
        String(e.payload.step.args.command).startsWith("grep"),
    );
    expect(openGrep?.type === "task_progress" && openGrep.payload.step.output).toMatch(
      /OPENAI_API_KEY=\[redacted\][\s\S]*NATS_PASS=\[redacted\][\s\S]*SWARM_SECRET_DEPLOY_KEY=\[redacted\]/,
    );

    // Logs of every process, and the reports.
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    const logs = [...procs.map((p) => p.stderr() + p.stdout()), submit.stdout, submit.stderr].join(
      "\n",
    );
    expect(logs.length).toBeGreaterThan(1000);
    for (const v of VALUES) expect(logs).not.toContain(v);
    const report = reportPaths(bus.workspace, mission);
    const reports = (await readFile(report.md, "utf8")) + (await readFile(report.json, "utf8"));
    expect(reports).toContain("leak-open");
    for (const v of VALUES) expect(reports).not.toContain(v);
  });
});
