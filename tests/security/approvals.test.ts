/**
 * Command policy and approvals through the whole path: a worker replica on a
 * real nats-server, the real `swarm approve` / `swarm deny` / `swarm audit`
 * processes, and a model (fake Ollama server, real ChatOllama client) that
 * reads why its command was refused.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import type { AuditRow } from "../../src/client/audit.ts";
import type { RosterAgent } from "../../src/workers/roster.ts";
import { startWorkerReplica, type WorkerReplica } from "../../src/workers/worker-replica.ts";
import {
  lastMessageText,
  sequence,
  startFakeOllama,
  textReply,
  toolCallReply,
  type FakeModelServer,
  type FakeScript,
} from "../helpers/fake-ollama.ts";
import { killAllSwarms, runSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { assign, makeTask, newMission, startBus, type Bus } from "../workers/worker-harness.ts";

const ACK_WAIT_MS = 1000;

const agent = (name: string, policy: RosterAgent["policy"], model?: string): RosterAgent => ({
  name,
  description: `${name} agent`,
  persona: "You do the task with the tools.",
  tools: ["run_shell"],
  policy,
  ...(model ? { model } : {}),
});

let bus: Bus;
let ollama: FakeModelServer;
let script: FakeScript = () => textReply("no script");
const replicas: WorkerReplica[] = [];

beforeAll(async () => {
  bus = await startBus();
  ollama = await startFakeOllama((req) => script(req));
  const start = (a: RosterAgent) =>
    startWorkerReplica({
      nc: bus.nc,
      agent: a,
      instance: `${a.name}1`,
      concurrency: 2,
      workspaceRoot: bus.workspace,
      defaultModel: "ollama:test-model",
      version: "test",
      log: silentLogger,
      ackWaitMs: ACK_WAIT_MS,
      env: { PATH: process.env.PATH, ...ollama.env },
    });
  const policy = {
    deny: ["\\bforbidden\\b"],
    approval: ["\\bdeploy-prod\\b"],
    approval_timeout_s: 30,
  };
  replicas.push(await start(agent("gated", policy)));
  replicas.push(
    await start(agent("hasty", { approval: ["\\bdeploy-prod\\b"], approval_timeout_s: 0.5 })),
  );
  replicas.push(await start(agent("modeled", policy, "ollama:test-model")));
});

afterAll(async () => {
  await killAllSwarms();
  await Promise.all(replicas.map((r) => r.stop("test over")));
  await ollama?.close();
  await bus?.close();
});

const ws = (mission: string, ...rel: string[]) => path.join(bus.workspace, mission, ...rel);
const cli = (...args: string[]) => runSwarm(args, swarmEnv(bus.server.url, bus.workspace));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function requested(mission: string, n = 1) {
  return bus.events.waitFor(
    "approval_requested",
    (e) => e.mission_id === mission && e.payload.approval_id.endsWith(`.${n}`),
  );
}

describe("approvals", () => {
  it("a command matching an approval pattern waits (past ack_wait, task kept alive) for `swarm approve`, then runs", async () => {
    const mission = newMission("approve");
    await assign(
      bus,
      mission,
      makeTask({
        id: "ship",
        agent: "gated",
        run: ["echo build", "echo deploy-prod > deployed.txt"],
      }),
    );
    const req = await requested(mission);
    expect(req.source).toBe("gated/gated1");
    expect(req.task_id).toBe("ship");
    expect(req.payload).toEqual({
      approval_id: `${mission}.ship.1.1`,
      agent: "gated",
      worker: "gated/gated1",
      command: "echo deploy-prod > deployed.txt",
      reason: "it matches the approval pattern /\\bdeploy-prod\\b/",
      timeout_s: 30,
    });
    expect(await exists(ws(mission, "deployed.txt"))).toBe(false);
    // Longer than the consumer's ack_wait: without working() the task would be redelivered.
    await sleep(ACK_WAIT_MS * 2);
    const approved = await cli("approve", `${mission}.ship.1.1`);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toBe(
      `approved ${mission}.ship.1.1 (gated/gated1): echo deploy-prod > deployed.txt\n`,
    );
    const done = await bus.events.result(mission, "ship");
    expect(done.type, done.payload.result.error).toBe("task_completed");
    expect(await readFile(ws(mission, "deployed.txt"), "utf8")).toBe("deploy-prod\n");
    expect(done.payload.result.steps[1]).toMatchObject({
      args: { command: "echo deploy-prod > deployed.txt", approval_id: `${mission}.ship.1.1` },
      ok: true,
      exit_code: 0,
    });
    expect(bus.events.forTask("task_started", mission, "ship")).toHaveLength(1);
    const decision = await bus.events.waitFor("approval_resolved", (e) => e.mission_id === mission);
    expect(decision).toMatchObject({
      source: "cli",
      task_id: "ship",
      correlation_id: req.id,
      payload: { approval_id: `${mission}.ship.1.1`, decision: "approved", by: "cli" },
    });

    // Decided already: a second decision is refused (exit 2), as is an id nobody asked for.
    const again = await cli("deny", `${mission}.ship.1.1`);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already decided: approved by cli/);
    const unknown = await cli("approve", `${mission}.ship.1.7`);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no approval .*\.ship\.1\.7 was requested/);
  });

  it("`swarm deny` refuses it: the step is not run, a run task fails saying why", async () => {
    const mission = newMission("deny");
    await assign(
      bus,
      mission,
      makeTask({ id: "ship", agent: "gated", run: ["echo deploy-prod > deployed.txt"] }),
    );
    await requested(mission);
    const denied = await cli("deny", `${mission}.ship.1.1`, "--json");
    expect(denied.code, denied.stderr).toBe(0);
    expect(JSON.parse(denied.stdout)).toEqual({
      approval_id: `${mission}.ship.1.1`,
      decision: "denied",
      worker: "gated/gated1",
      command: "echo deploy-prod > deployed.txt",
    });
    const done = await bus.events.result(mission, "ship");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toBe(
      `run step 1 was not run (approval ${mission}.ship.1.1 was denied by cli (it matches the approval pattern /\\bdeploy-prod\\b/)): echo deploy-prod > deployed.txt`,
    );
    expect(done.payload.result.steps).toEqual([
      expect.objectContaining({
        args: { command: "echo deploy-prod > deployed.txt", approval_id: `${mission}.ship.1.1` },
        ok: false,
        exit_code: null,
      }),
    ]);
    expect(await exists(ws(mission, "deployed.txt"))).toBe(false);
    // A person said no: another attempt would ask the same question.
    expect(done.payload.result.retryable).toBe(false);
  });

  it("no decision within the agent's approval_timeout_s: the worker records timed_out and the command is not run", async () => {
    const mission = newMission("timeout");
    await assign(
      bus,
      mission,
      makeTask({ id: "ship", agent: "hasty", run: ["echo deploy-prod > deployed.txt"] }),
    );
    const done = await bus.events.result(mission, "ship");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toMatch(
      /no decision on approval .*\.ship\.1\.1 within 0\.5s, so it counts as denied/,
    );
    const decision = await bus.events.waitFor("approval_resolved", (e) => e.mission_id === mission);
    expect(decision).toMatchObject({
      source: "hasty/hasty1",
      payload: { decision: "timed_out", by: "hasty/hasty1" },
    });
    expect(await exists(ws(mission, "deployed.txt"))).toBe(false);
    // Nobody was there: a later attempt may ask again.
    expect(done.payload.result.retryable).toBeUndefined();
  });

  it("a denied command fails a run step at once; verify commands obey the same policy", async () => {
    const mission = newMission("denied");
    await assign(
      bus,
      mission,
      makeTask({ id: "bad", agent: "gated", run: ["echo forbidden > x.txt"] }),
    );
    await assign(
      bus,
      mission,
      makeTask({
        id: "check",
        agent: "gated",
        run: ["echo ok"],
        verify: ["echo forbidden", "true"],
      }),
    );
    const bad = await bus.events.result(mission, "bad");
    expect(bad.type).toBe("task_failed");
    expect(bad.payload.result.error).toBe(
      "run step 1 was not run (command refused by policy: it matches the deny pattern /\\bforbidden\\b/): echo forbidden > x.txt",
    );
    expect(bad.payload.result.steps[0]).toMatchObject({ ok: false, exit_code: null });
    expect(bad.payload.result.retryable).toBe(false);
    const check = await bus.events.result(mission, "check");
    expect(check.type).toBe("task_failed");
    expect(check.payload.result.verification).toEqual([
      {
        command: "echo forbidden",
        ok: false,
        exit_code: null,
        output: "not run: command refused by policy: it matches the deny pattern /\\bforbidden\\b/",
      },
      { command: "true", ok: true, exit_code: 0, output: "" },
    ]);
    expect(bus.events.of("approval_requested", (e) => e.mission_id === mission)).toEqual([]);
  });

  it("the model reads why its command was refused and carries on", async () => {
    const mission = newMission("model");
    script = sequence(toolCallReply("run_shell", { command: "echo forbidden" }), (req) =>
      textReply(`understood: ${lastMessageText(req)}`),
    );
    await assign(bus, mission, makeTask({ id: "m1", agent: "modeled" }));
    const done = await bus.events.result(mission, "m1");
    const told = ollama.requests.at(-1)!.messages.at(-1);
    expect(told).toMatchObject({ role: "tool" });
    expect(String(told?.content)).toMatch(
      /^ERROR: the command was not run: command refused by policy: it matches the deny pattern/,
    );
    expect(done.payload.result.steps).toEqual([
      expect.objectContaining({ tool: "run_shell", ok: false, exit_code: null }),
    ]);
    expect(done.payload.result.summary).toMatch(/understood: ERROR: the command was not run/);
  });
});

describe("swarm audit", () => {
  it("rebuilds who ran what, when, with which exit code and approval, from SQUAD_EVENTS", async () => {
    const mission = newMission("audit");
    await assign(
      bus,
      mission,
      makeTask({
        id: "ship",
        agent: "gated",
        run: ["echo build > build.txt", "echo deploy-prod", "exit 3"],
        verify: ["test -s build.txt"],
      }),
    );
    await requested(mission);
    expect((await cli("approve", `${mission}.ship.1.1`)).code).toBe(0);
    await bus.events.result(mission, "ship");
    await assign(bus, mission, makeTask({ id: "deny", agent: "gated", run: ["echo deploy-prod"] }));
    await bus.events.waitFor(
      "approval_requested",
      (e) => e.payload.approval_id === `${mission}.deny.1.1`,
    );
    const denied = await cli(
      "deny",
      `${mission}.deny.1.1`,
      "--reason",
      "  not on a Friday ",
      "--json",
    );
    expect(denied.code, denied.stderr).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({ reason: "not on a Friday" });
    // The task hears why.
    expect((await bus.events.result(mission, "deny")).payload.result.error).toContain(
      `approval ${mission}.deny.1.1 was denied by cli: not on a Friday (`,
    );

    const out = await cli("audit", mission, "--json");
    expect(out.code, out.stderr).toBe(0);
    const { mission_id, rows } = JSON.parse(out.stdout) as { mission_id: string; rows: AuditRow[] };
    expect(mission_id).toBe(mission);
    const brief = rows.map((r) => [
      r.kind,
      r.task_id,
      r.command,
      r.exit_code,
      r.ok,
      r.decision,
      r.by,
    ]);
    expect(brief).toEqual([
      ["step", "ship", "echo build > build.txt", 0, true, null, null],
      ["approval", "ship", "echo deploy-prod", null, true, "approved", "cli"],
      ["step", "ship", "echo deploy-prod", 0, true, "approved", "cli"],
      ["step", "ship", "exit 3", 3, false, null, null],
      ["approval", "deny", "echo deploy-prod", null, false, "denied", "cli"],
      ["step", "deny", "echo deploy-prod", null, false, "denied", "cli"],
    ]);
    expect(
      rows.filter((r) => r.decision_reason).map((r) => [r.task_id, r.decision_reason]),
    ).toEqual([["deny", "not on a Friday"]]);
    for (const r of rows) {
      expect(r.worker).toBe("gated/gated1");
      expect(r.attempt).toBe(1);
      expect(Date.parse(r.timestamp)).toBeGreaterThan(0);
    }
    expect(rows.find((r) => r.kind === "step")?.duration_ms).toBeGreaterThanOrEqual(0);

    const text = await cli("audit", mission);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^TIME\s+TASK\s+WORKER\s+TOOL\s+EXIT\s+OK\s+MS\s+APPROVAL\s+COMMAND \/ ARGS$/,
    );
    expect(lines).toHaveLength(7);
    expect(lines[2]).toMatch(
      new RegExp(
        `ship#1\\s+gated/gated1\\s+approval\\s+-\\s+yes\\s+\\d+\\s+approved by cli \\(${mission}\\.ship\\.1\\.1\\)\\s+echo deploy-prod$`,
      ),
    );

    expect(lines[5]).toMatch(
      new RegExp(`denied by cli: not on a Friday \\(${mission}\\.deny\\.1\\.1\\)`),
    );
    const tooLong = await cli("deny", `${mission}.deny.1.1`, "--reason", "x".repeat(2001));
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(
      /--reason is 2001 characters long; an approval's reason holds at most 2000/,
    );

    const none = await cli("audit", "m-no-such-mission");
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no events of mission m-no-such-mission/);
  });
});
