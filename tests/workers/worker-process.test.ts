/**
 * Worker replicas as real processes (`swarm worker --agent builder`), driven
 * the way the orchestrator drives them: task_assigned on squad.tasks.builder,
 * results watched on squad.coordination. Run-only tasks: no model server
 * exists anywhere in this file (SWARM_WORKER_MODEL points at a closed port).
 */
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { unusedPort } from "../helpers/fake-ollama.ts";
import { killAllSwarms } from "../helpers/swarm-process.ts";
import {
  assign,
  endMission,
  makeTask,
  newMission,
  processesMatching,
  spawnWorker,
  startBus,
  type Bus,
  type WorkerProcess,
} from "./worker-harness.ts";

const SECRET_KEY = `sk-test-${randomBytes(12).toString("hex")}`;
const SECRET_TOKEN = `tok-${randomBytes(12).toString("hex")}`;
const AGENT = "builder";

let bus: Bus;
let workers: WorkerProcess[] = [];

beforeAll(async () => {
  bus = await startBus();
  const env = {
    SWARM_WORKER_MODEL: "ollama:qwen-test",
    OLLAMA_HOST: `127.0.0.1:${await unusedPort()}`,
    SWARM_ACK_WAIT_MS: "2000",
    SWARM_LEASE_MS: "3000",
    SWARM_HEARTBEAT_MS: "250",
    OPENAI_API_KEY: SECRET_KEY,
    SWARM_TEST_API_TOKEN: SECRET_TOKEN,
    // The unconfined runtime (process counts, /proc/$PPID/environ readable); tests/security covers bwrap.
    SWARM_SANDBOX: "none",
  };
  workers = await Promise.all([1, 2, 3].map(() => spawnWorker(bus, AGENT, env)));
});

afterAll(async () => {
  await killAllSwarms();
  await bus?.close();
});

const ws = (mission: string, ...rel: string[]) => path.join(bus.workspace, mission, ...rel);

async function consumerIdle(): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  await vi.waitFor(
    async () => {
      const ci = await jsm.consumers.info("SQUAD_TASKS", `worker-${AGENT}`);
      expect({ pending: ci.num_pending, ackPending: ci.num_ack_pending }).toEqual({
        pending: 0,
        ackPending: 0,
      });
    },
    { timeout: 10_000, interval: 100 },
  );
}

describe("worker processes, run-only tasks", () => {
  it("runs a run-only task with no model server, reporting steps and checks", async () => {
    const mission = newMission("run");
    await assign(
      bus,
      mission,
      makeTask({
        id: "hello",
        agent: AGENT,
        run: ["echo hello > hello.txt", "cat hello.txt"],
        verify: ["grep -qx hello hello.txt"],
      }),
    );
    const done = await bus.events.result(mission, "hello");
    expect(done.type).toBe("task_completed");
    const { result } = done.payload;
    expect(result).toMatchObject({
      status: "succeeded",
      attempt: 1,
      usage: { model: null, input_tokens: 0, output_tokens: 0 },
      verification: [{ command: "grep -qx hello hello.txt", ok: true, exit_code: 0 }],
    });
    expect(result.steps.map((s) => [s.tool, s.args.command, s.ok, s.exit_code])).toEqual([
      ["run_shell", "echo hello > hello.txt", true, 0],
      ["run_shell", "cat hello.txt", true, 0],
    ]);
    expect(result.steps[1]?.output).toBe("hello\n");
    expect(await readFile(ws(mission, "hello.txt"), "utf8")).toBe("hello\n");

    // The lifecycle on squad.coordination: started, one progress per step, then the result.
    const started = bus.events.forTask("task_started", mission, "hello");
    const progress = bus.events.forTask("task_progress", mission, "hello");
    expect(started).toHaveLength(1);
    expect(started[0]?.payload).toMatchObject({ attempt: 1, delivery: 1 });
    expect(started[0]?.source).toBe(result.worker);
    expect(progress.map((p) => p.payload.step.args.command)).toEqual([
      "echo hello > hello.txt",
      "cat hello.txt",
    ]);
    const order = bus.events.all.filter((e) => e.mission_id === mission).map((e) => e.type);
    expect(order).toEqual([
      "task_assigned",
      "task_started",
      "task_progress",
      "task_progress",
      "task_completed",
    ]);
  });

  it("fails a task whose run step fails, without running the rest", async () => {
    const mission = newMission("runfail");
    await assign(
      bus,
      mission,
      makeTask({ id: "broken", agent: AGENT, run: ["exit 3", "touch never.txt"] }),
    );
    const done = await bus.events.result(mission, "broken");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toBe("run step 1 exited with code 3: exit 3");
    expect(done.payload.result.steps).toHaveLength(1);
    await expect(access(ws(mission, "never.txt"))).rejects.toThrow();
  });

  it("completes a `run: []` task without a model, running nothing", async () => {
    // The model server is down: a task that fell through to the model would be handed back, not completed.
    const mission = newMission("noop");
    await assign(
      bus,
      mission,
      makeTask({ id: "milestone", agent: AGENT, instructions: "", run: [] }),
    );
    const done = await bus.events.result(mission, "milestone");
    expect(done.type).toBe("task_completed");
    expect(done.payload.result).toMatchObject({
      status: "succeeded",
      steps: [],
      verification: [],
      usage: { model: null, input_tokens: 0, output_tokens: 0 },
    });
    expect(done.payload.result.error).toBeUndefined();
    const order = bus.events.all.filter((e) => e.mission_id === mission).map((e) => e.type);
    expect(order).toEqual(["task_assigned", "task_started", "task_completed"]);
  });

  it("runs only the verify checks of a `run: []` task, which decide its status", async () => {
    const mission = newMission("checks");
    await mkdir(ws(mission), { recursive: true });
    await writeFile(ws(mission, "present.txt"), "x");
    await assign(
      bus,
      mission,
      makeTask({ id: "ok", agent: AGENT, run: [], verify: ["test -f present.txt"] }),
    );
    await assign(
      bus,
      mission,
      makeTask({
        id: "missing",
        agent: AGENT,
        run: [],
        verify: ["test -f present.txt", "test -f absent.txt"],
      }),
    );
    const ok = await bus.events.result(mission, "ok");
    expect(ok.type).toBe("task_completed");
    expect(ok.payload.result).toMatchObject({
      steps: [],
      usage: { model: null },
      verification: [{ command: "test -f present.txt", ok: true, exit_code: 0 }],
    });
    const missing = await bus.events.result(mission, "missing");
    expect(missing.type).toBe("task_failed");
    expect(missing.payload.result).toMatchObject({
      steps: [],
      usage: { model: null },
      error: "verification failed: `test -f absent.txt` exited with code 1",
      verification: [
        { command: "test -f present.txt", ok: true, exit_code: 0 },
        { command: "test -f absent.txt", ok: false, exit_code: 1 },
      ],
    });
  });

  it("completes each of 60 tasks exactly once, spread over the 3 replicas", async () => {
    const mission = newMission("fanout");
    const ids = Array.from({ length: 60 }, (_, i) => `t${i}`);
    await Promise.all(
      ids.map((id) =>
        assign(bus, mission, makeTask({ id, agent: AGENT, run: [`echo ${id} > ${id}.txt`] })),
      ),
    );
    await bus.events.until(
      () => bus.events.of("task_completed", (e) => e.mission_id === mission).length >= 60,
      60_000,
      "60 completions",
    );
    await consumerIdle();
    const completed = bus.events.of("task_completed", (e) => e.mission_id === mission);
    expect(completed.map((e) => e.task_id).sort()).toEqual([...ids].sort());
    expect(bus.events.of("task_failed", (e) => e.mission_id === mission)).toHaveLength(0);
    // Started once each: no attempt was worked twice.
    expect(bus.events.of("task_started", (e) => e.mission_id === mission)).toHaveLength(60);
    const perWorker = new Map<string, number>();
    for (const e of completed) {
      perWorker.set(e.payload.result.worker, (perWorker.get(e.payload.result.worker) ?? 0) + 1);
    }
    expect([...perWorker.keys()].sort()).toEqual(workers.map((w) => w.worker).sort());
    for (const id of ids) expect(await readFile(ws(mission, `${id}.txt`), "utf8")).toBe(`${id}\n`);
  });

  it("fails a task over its timeout and leaves no process behind", async () => {
    const mission = newMission("timeout");
    const marker = `swarm-timeout-marker-${randomBytes(4).toString("hex")}`;
    await assign(
      bus,
      mission,
      makeTask({
        id: "slow",
        agent: AGENT,
        timeout_s: 1,
        // A background and a foreground grandchild, both with the marker in argv ($0).
        run: [`bash -c 'sleep 300; :' ${marker} & bash -c 'sleep 300; :' ${marker}`],
      }),
    );
    // The command runs (task_started goes out just before it is spawned).
    await vi.waitFor(async () => expect((await processesMatching(marker)).length).toBe(3), {
      timeout: 10_000,
      interval: 50,
    });
    const done = await bus.events.result(mission, "slow");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toMatch(/timed out/);
    expect(done.payload.result.steps[0]).toMatchObject({ ok: false, exit_code: null });
    expect(await processesMatching(marker)).toEqual([]);
  });

  it("keeps the worker's secrets out of commands and out of every event", async () => {
    const mission = newMission("secrets");
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      // A root worker runs commands as the sandbox user, which can't read its environment;
      // the secrets then come from a file of the mission, for the redaction to catch.
      await mkdir(ws(mission, "."), { recursive: true });
      await writeFile(
        ws(mission, "planted.env"),
        `OPENAI_API_KEY=${SECRET_KEY}\nSWARM_TEST_API_TOKEN=${SECRET_TOKEN}\n`,
      );
    }
    await assign(
      bus,
      mission,
      makeTask({
        id: "leak",
        agent: AGENT,
        run: [
          "env > env.txt",
          'echo "key=[$OPENAI_API_KEY] token=[$SWARM_TEST_API_TOKEN] nats=[$NATS_URL]"',
          // The worker's own environment is readable by the same user: the event must still be clean.
          "(tr '\\0' '\\n' < /proc/$PPID/environ 2>&1; cat planted.env 2>/dev/null) | grep -E '^(OPENAI_API_KEY|SWARM_TEST_API_TOKEN)=|Permission denied'",
        ],
      }),
    );
    const done = await bus.events.result(mission, "leak");
    expect(done.type).toBe("task_completed");
    const env = await readFile(ws(mission, "env.txt"), "utf8");
    expect(env).toMatch(/^PATH=/m);
    expect(env).not.toContain(SECRET_KEY);
    expect(env).not.toContain(SECRET_TOKEN);
    expect(env).not.toMatch(/OPENAI_API_KEY|SWARM_TEST_API_TOKEN|NATS_URL/);
    const [, echoed, fromProc] = done.payload.result.steps;
    expect(echoed?.output).toBe("key=[] token=[] nats=[]\n");
    expect(fromProc?.output).toContain("OPENAI_API_KEY=[redacted]");
    expect(fromProc?.output).toContain("SWARM_TEST_API_TOKEN=[redacted]");
    if (asRoot) expect(fromProc?.output).toMatch(/\/proc\/\d+\/environ: Permission denied/);
    const wire = JSON.stringify(bus.events.all);
    expect(wire).not.toContain(SECRET_KEY);
    expect(wire).not.toContain(SECRET_TOKEN);
  });

  it("beats with its in-flight count while working", async () => {
    const mission = newMission("beat");
    await assign(bus, mission, makeTask({ id: "nap", agent: AGENT, run: ["sleep 1.5"] }));
    const started = await bus.events.waitFor("task_started", (e) => e.mission_id === mission);
    const busy = await bus.events.waitFor(
      "agent_heartbeat",
      (e) =>
        `${e.payload.agent}/${e.payload.instance}` === started.source && e.payload.in_flight === 1,
    );
    const done = await bus.events.result(mission, "nap");
    expect(done.type).toBe("task_completed");
    const after = bus.events.all.length;
    const idle = await bus.events.waitFor(
      "agent_heartbeat",
      (e) =>
        `${e.payload.agent}/${e.payload.instance}` === started.source &&
        e.payload.in_flight === 0 &&
        bus.events.all.indexOf(e) > after,
    );
    expect(idle.payload.completed).toBeGreaterThan(busy.payload.completed);
    expect(idle.payload.uptime_s).toBeGreaterThanOrEqual(0);
    for (const w of workers) {
      expect(bus.events.of("agent_online", (e) => e.source === w.worker)).toHaveLength(1);
    }
  });

  it.each([
    ["mission_cancelled", /^cancelled: stop it$/],
    ["mission_failed", /^mission failed: stop it$/],
  ] as const)("aborts a mission's in-flight task on %s", async (type, error) => {
    const mission = newMission("end");
    const marker = `swarm-end-marker-${randomBytes(4).toString("hex")}`;
    await assign(
      bus,
      mission,
      makeTask({ id: "long", agent: AGENT, run: [`sleep 120 # ${marker}`] }),
    );
    await bus.events.waitFor("task_started", (e) => e.mission_id === mission);
    await endMission(bus, mission, type, "stop it");
    const done = await bus.events.result(mission, "long");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toMatch(error);
    expect(await processesMatching(marker)).toEqual([]);

    // A task of the ended mission still queued is dropped, not run.
    await assign(bus, mission, makeTask({ id: "late", agent: AGENT, run: ["touch late.txt"] }));
    await consumerIdle();
    expect(bus.events.forTask("task_started", mission, "late")).toHaveLength(0);
    await expect(access(ws(mission, "late.txt"))).rejects.toThrow();
  });

  // Last: it kills a replica.
  it("redelivers the task of a replica killed with SIGKILL to another, which completes it", async () => {
    const mission = newMission("kill");
    await assign(
      bus,
      mission,
      makeTask({
        id: "victim",
        agent: AGENT,
        run: ["echo $$ >> runs.txt; sleep 1.5", "echo finished > done.txt"],
      }),
    );
    const first = await bus.events.waitFor("task_started", (e) => e.mission_id === mission);
    const victim = workers.find((w) => w.worker === first.source)!;
    expect(victim).toBeDefined();
    victim.kill("SIGKILL");
    expect((await victim.exited).signal).toBe("SIGKILL");

    const done = await bus.events.result(mission, "victim", 30_000);
    expect(done.type).toBe("task_completed");
    expect(done.payload.result.worker).not.toBe(victim.worker);
    const starts = bus.events.forTask("task_started", mission, "victim");
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.at(-1)?.payload.delivery).toBeGreaterThanOrEqual(2);
    expect(starts.at(-1)?.source).toBe(done.payload.result.worker);
    expect(bus.events.forTask("task_completed", mission, "victim")).toHaveLength(1);
    expect(await readFile(ws(mission, "done.txt"), "utf8")).toBe("finished\n");
  });
});
