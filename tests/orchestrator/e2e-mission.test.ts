/**
 * End to end: a real nats-server, the real `swarm orchestrator` and
 * `swarm worker` processes, and a fake Ollama server that the workers'
 * ChatOllama talks to. Missions with explicit plans (no planner here).
 */
import { access, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { STREAMS } from "../../src/schema/index.ts";
import {
  startFakeOllama,
  textReply,
  toolCallReply,
  type FakeModelServer,
} from "../helpers/fake-ollama.ts";
import { runSwarm } from "../helpers/swarm-process.ts";
import {
  briefText,
  countByTask,
  is,
  ofType,
  plan,
  startSwarm,
  taskRouter,
  type Swarm,
} from "./e2e-harness.ts";

const MODEL = "ollama:qwen-test";
const router = taskRouter();
let ollama: FakeModelServer;
let swarm: Swarm;

beforeAll(async () => {
  ollama = await startFakeOllama(router.script);
  swarm = await startSwarm({ SWARM_WORKER_MODEL: MODEL, OLLAMA_HOST: ollama.url });
  const workers = [
    swarm.spawnWorker("builder", { concurrency: 3 }),
    swarm.spawnWorker("tester", { concurrency: 2 }),
    swarm.spawnWorker("docs_writer", { concurrency: 2 }),
  ];
  await Promise.all(workers.map((w) => swarm.ready(w, "worker")));
});

afterEach(async () => {
  await swarm.killOrchestrators();
});

afterAll(async () => {
  await swarm?.stop();
  await ollama?.close();
});

async function orchestrator(env: Record<string, string> = {}) {
  const p = swarm.spawnOrchestrator(env);
  await swarm.ready(p, "orchestrator");
  return p;
}

const usage = { input: 100, output: 10 };

describe("a mission end to end", () => {
  it("runs 8 tasks in 3 waves over 3 agents, model-driven and run-only, and reports them", async () => {
    await orchestrator();
    const id = "m-e2e-library";
    router.on(id, "b-model", [
      toolCallReply("write_file", { path: "lib/b.js", content: "export const b = 2;\n" }, usage),
      toolCallReply(
        "run_shell",
        { command: "node --input-type=module -e \"import {b} from './lib/b.js'; console.log(b)\"" },
        usage,
      ),
      textReply("Wrote lib/b.js exporting b = 2 and ran it.", usage),
    ]);
    router.on(id, "t-model", [
      toolCallReply("run_shell", { command: "grep -c export lib/b.js" }, usage),
      textReply("lib/b.js has one export.", usage),
    ]);
    router.on(id, "d-model", [
      toolCallReply(
        "write_file",
        { path: "README.md", content: "# lib\n\nExports b and a.\n" },
        usage,
      ),
      textReply("Wrote README.md.", usage),
    ]);
    const brief = briefText({
      title: "Library in three waves",
      agents: ["builder", "tester", "docs_writer"],
      plan: plan(
        [
          {
            id: "a-run",
            agent: "builder",
            run: ["mkdir -p lib", "echo 'export const a = 1;' > lib/a.js"],
            verify: ["test -f lib/a.js"],
          },
          { id: "b-model", agent: "builder", verify: ["test -f lib/b.js"] },
          {
            id: "notes",
            agent: "docs_writer",
            run: ["echo notes > NOTES.md"],
            verify: ["grep -q notes NOTES.md"],
          },
        ],
        [
          {
            id: "t-model",
            agent: "tester",
            depends_on: ["b-model"],
            verify: ["grep -q 'b = 2' lib/b.js"],
          },
          {
            id: "a-test",
            agent: "tester",
            depends_on: ["a-run"],
            run: [
              "node --input-type=module -e \"import {a} from './lib/a.js'; if (a !== 1) process.exit(1)\"",
            ],
          },
          {
            id: "c-run",
            agent: "builder",
            depends_on: ["a-run"],
            run: ["echo c > lib/c.txt"],
            verify: ["test -s lib/c.txt"],
          },
        ],
        [
          { id: "d-model", agent: "docs_writer", verify: ["grep -q Exports README.md"] },
          {
            id: "all",
            agent: "tester",
            run: ["ls lib > listing.txt", "cat listing.txt"],
            verify: [
              "grep -q a.js listing.txt",
              "grep -q b.js listing.txt",
              "grep -q c.txt listing.txt",
            ],
          },
        ],
      ),
    });
    await swarm.submit(brief, id);
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    if (final.type !== "mission_completed") return;
    expect(final.payload.tasks).toEqual({ total: 8, succeeded: 8, failed: 0 });
    expect(final.payload.usage).toEqual({ input_tokens: 700, output_tokens: 70 });
    expect(final.payload.summary).toBe("8 tasks succeeded in 3 waves");

    // The work is really in the mission's workspace.
    const ws = path.join(swarm.workspace, id);
    await access(path.join(ws, "lib/b.js"));
    expect(await readFile(path.join(ws, "README.md"), "utf8")).toContain("Exports b");

    // The events: 3 waves started and completed, one attempt per task.
    const events = await swarm.events(id);
    expect(ofType(events, "wave_started").map((e) => e.payload.wave)).toEqual([1, 2, 3]);
    expect(ofType(events, "wave_completed").map((e) => e.payload.failed)).toEqual([[], [], []]);
    const completed = countByTask(events, "task_completed");
    expect(Object.keys(completed)).toHaveLength(8);
    expect(Object.values(completed).every((n) => n === 1)).toBe(true);
    expect(swarm.dispatchesOf(id)).toHaveLength(8);
    // Inputs: a dependent task got its dependency's summary.
    const tModelPrompt = router
      .requestsOf(id, "t-model")[0]!
      .messages.find((m) => m.role === "user");
    expect(String(tModelPrompt?.content)).toContain("b-model: Wrote lib/b.js exporting b = 2");

    // The report, .json: counts, every task's outcome, steps, verification, usage.
    const { md, json } = await swarm.report(id);
    expect(final.payload.report).toBe(path.join(swarm.workspace, "reports", `${id}.md`));
    expect(json).toMatchObject({
      mission_id: id,
      title: "Library in three waves",
      status: "completed",
      planner: null,
      tasks: { total: 8, succeeded: 8, failed: 0, skipped: 0 },
      usage: {
        input_tokens: 700,
        output_tokens: 70,
        byAgent: {
          builder: { input_tokens: 300, output_tokens: 30 },
          tester: { input_tokens: 200, output_tokens: 20 },
          docs_writer: { input_tokens: 200, output_tokens: 20 },
        },
        byModel: {
          [MODEL]: { input_tokens: 700, output_tokens: 70 },
          none: { input_tokens: 0, output_tokens: 0 },
        },
      },
    });
    expect(json.duration_ms).toBeGreaterThan(0);
    const rows = Object.fromEntries(json.task_results.map((r) => [r.id, r]));
    expect(Object.keys(rows).sort()).toEqual(
      ["a-run", "a-test", "all", "b-model", "c-run", "d-model", "notes", "t-model"].sort(),
    );
    for (const r of json.task_results) {
      expect(r).toMatchObject({ status: "succeeded", attempts: 1 });
      expect(r.duration_ms).toBeGreaterThanOrEqual(0);
      expect(r.result?.status).toBe("succeeded");
      expect(r.workers[0]).toMatch(new RegExp(`^${r.agent}/`));
    }
    expect(rows["b-model"]).toMatchObject({
      wave: 1,
      usage: { input_tokens: 300, output_tokens: 30 },
    });
    expect(rows["b-model"]!.result!.usage).toEqual({
      model: MODEL,
      input_tokens: 300,
      output_tokens: 30,
    });
    expect(rows["b-model"]!.result!.steps.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", true],
      ["run_shell", true],
    ]);
    expect(rows["all"]!.result!.steps.map((s) => s.args.command)).toEqual([
      "ls lib > listing.txt",
      "cat listing.txt",
    ]);
    expect(rows["all"]!.result!.verification.map((v) => [v.command, v.ok, v.exit_code])).toEqual([
      ["grep -q a.js listing.txt", true, 0],
      ["grep -q b.js listing.txt", true, 0],
      ["grep -q c.txt listing.txt", true, 0],
    ]);
    expect(rows["a-run"]!.result!.usage).toEqual({
      model: null,
      input_tokens: 0,
      output_tokens: 0,
    });

    // The report, .md: the same facts for a person.
    expect(md).toContain("| Status | **completed**: every task succeeded |");
    expect(md).toContain("| Tasks | 8 succeeded, 0 failed, 8 in all |");
    expect(md).toContain("| Tokens | 700 in, 70 out |");
    expect(md).toContain("| agent builder | 300 | 30 |");
    expect(md).toContain("| agent tester | 200 | 20 |");
    expect(md).toContain(`| model ${MODEL} | 700 | 70 |`);
    expect(md).toMatch(
      /\| 1 \| `b-model` task b-model \| builder \| succeeded \| 1 \| [\d.]+ m?s \| 330 \| builder\//,
    );
    expect(md).toContain("- ✔ `grep -q c.txt listing.txt` (exit 0)");
    expect(md).toContain("| 1 | write_file |");
  });

  it("retries a task that fails its first attempt; attempt 2 succeeds", async () => {
    await orchestrator();
    const id = "m-e2e-retry";
    await swarm.submit(
      briefText({
        title: "Flaky",
        plan: plan([
          {
            id: "flaky",
            agent: "builder",
            run: [
              "if [ -f .tried ]; then echo second; else touch .tried; echo first >&2; exit 7; fi",
            ],
            max_attempts: 3,
          },
        ]),
      }),
      id,
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    const events = await swarm.events(id);
    const failed = ofType(events, "task_failed");
    expect(failed.map((e) => [e.payload.result.attempt, e.payload.result.error])).toEqual([
      [
        1,
        "run step 1 exited with code 7: " +
          "if [ -f .tried ]; then echo second; else touch .tried; echo first >&2; exit 7; fi",
      ],
    ]);
    expect(ofType(events, "task_completed").map((e) => e.payload.result.attempt)).toEqual([2]);
    expect(swarm.dispatchesOf(id).map((d) => d.attempt)).toEqual([1, 2]);
    const { json } = await swarm.report(id);
    expect(json.task_results[0]).toMatchObject({ id: "flaky", status: "succeeded", attempts: 2 });
  });

  it("fails the mission naming a task that always fails, when no planner can revise the plan", async () => {
    await orchestrator();
    const id = "m-e2e-always-fails";
    await swarm.submit(
      briefText({
        title: "Doomed",
        plan: plan(
          [
            { id: "fine", agent: "builder", run: ["true"] },
            { id: "broken", agent: "builder", run: ["echo no luck; exit 3"], max_attempts: 2 },
          ],
          [{ id: "after", agent: "tester", run: ["true"] }],
        ),
      }),
      id,
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_failed");
    if (final.type !== "mission_failed") return;
    expect(final.payload.reason).toContain(
      "task broken failed after 2 attempts: run step 1 exited with code 3",
    );
    expect(final.payload.reason).toContain("no planner model is configured");
    expect(final.payload.failed_tasks).toEqual([
      { id: "broken", error: "run step 1 exited with code 3: echo no luck; exit 3" },
    ]);
    expect(final.payload.tasks).toEqual({ total: 3, succeeded: 1, failed: 1 });
    expect(
      swarm
        .dispatchesOf(id)
        .map((d) => `${d.task}#${d.attempt}`)
        .sort(),
    ).toEqual(["broken#1", "broken#2", "fine#1"]);
    const { json, md } = await swarm.report(id);
    const status = Object.fromEntries(json.task_results.map((r) => [r.id, r.status]));
    expect(status).toEqual({ fine: "succeeded", broken: "failed", after: "skipped" });
    expect(md).toContain("## What failed");
    expect(md).toContain("- `broken` after 2 attempt(s): run step 1 exited with code 3");
  });

  it("runs a mission submitted while no orchestrator was running once one starts", async () => {
    const id = "m-e2e-early";
    await swarm.submit(
      briefText({
        title: "Early bird",
        plan: plan([{ id: "hello", agent: "builder", run: ["echo hi > hi.txt"] }]),
      }),
      id,
    );
    // It waits in SQUAD_MISSIONS; nothing has happened to it yet.
    expect(await swarm.events(id)).toEqual([]);
    await orchestrator();
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    expect(await readFile(path.join(swarm.workspace, id, "hi.txt"), "utf8")).toBe("hi\n");
  });

  it("ends a mission cancelled before any orchestrator saw it without running anything", async () => {
    const id = "m-e2e-cancelled-early";
    await swarm.submit(
      briefText({
        title: "Never mind",
        plan: plan([{ id: "x", agent: "builder", run: ["true"] }]),
      }),
      id,
    );
    await swarm.cancel(id, "not needed after all");
    await orchestrator();
    const final = await swarm.waitFinal(id);
    expect(final).toMatchObject({
      type: "mission_cancelled",
      source: "orchestrator",
      payload: { reason: "not needed after all" },
    });
    expect(swarm.dispatchesOf(id)).toEqual([]);
    const { json } = await swarm.report(id);
    expect(json).toMatchObject({ status: "cancelled", tasks: { total: 0 } });
  });

  it("fails an attempt no worker starts (no worker for its agent) by start timeout", async () => {
    await orchestrator({ SWARM_START_TIMEOUT_S: "1.5", SWARM_MAX_REPLANS: "0" });
    const id = "m-e2e-no-worker";
    await swarm.submit(
      briefText({
        title: "Nobody home",
        plan: plan([{ id: "orphan", agent: "reviewer", max_attempts: 2 }]),
      }),
      id,
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_failed");
    if (final.type !== "mission_failed") return;
    expect(final.payload.reason).toBe(
      'task orphan failed after 2 attempts: timed out: no worker started attempt 2 within 1.5 s (is a worker for agent "reviewer" running?)',
    );
    // Neither attempt is left waiting in the work queue for a reviewer that may come later.
    const jsm = await jetstreamManager(swarm.nc);
    const queue = await jsm.streams.info(STREAMS.tasks, {
      subjects_filter: "squad.tasks.reviewer",
    });
    expect(swarm.dispatchesOf(id).map((d) => d.attempt)).toEqual([1, 2]);
    expect(queue.state.subjects?.["squad.tasks.reviewer"] ?? 0).toBe(0);
    const timeouts = ofType(await swarm.events(id), "task_failed");
    expect(
      timeouts.map((e) => [e.source, e.payload.result.worker, e.payload.result.attempt]),
    ).toEqual([
      ["orchestrator", "orchestrator", 1],
      ["orchestrator", "orchestrator", 2],
    ]);
  });

  it("stops a mission on a cancel request: the orchestrator ends it, the worker aborts its task", async () => {
    await orchestrator();
    const id = "m-e2e-cancel";
    await swarm.submit(
      briefText({
        title: "Long and cancelled",
        plan: plan(
          [{ id: "long", agent: "builder", run: ["sleep 120"] }],
          [{ id: "never", agent: "tester", run: ["true"] }],
        ),
      }),
      id,
    );
    await swarm.waitEvent(id, is("task_started"));
    await swarm.cancel(id, "changed my mind");
    const final = await swarm.waitFinal(id);
    expect(final).toMatchObject({
      type: "mission_cancelled",
      source: "orchestrator",
      payload: { reason: "changed my mind", requested_by: "e2e-test" },
    });
    // The worker killed `sleep 120` and reported the attempt as cancelled.
    const aborted = await swarm.waitEvent(id, is("task_failed"));
    expect(aborted.source).toMatch(/^builder\//);
    expect(aborted.payload.result.error).toBe("cancelled: changed my mind");
    expect(aborted.payload.result.steps[0]).toMatchObject({ tool: "run_shell", ok: false });
    expect(swarm.dispatchesOf(id).map((d) => d.task)).toEqual(["long"]);
    const { json } = await swarm.report(id);
    expect(Object.fromEntries(json.task_results.map((r) => [r.id, r.status]))).toEqual({
      long: "cancelled",
      never: "skipped",
    });
  });

  it("fails the mission when model usage exceeds its token budget", async () => {
    await orchestrator();
    const id = "m-e2e-budget";
    router.on(id, "spender", [
      toolCallReply("write_file", { path: "x.txt", content: "x" }, { input: 100, output: 20 }),
      textReply("Wrote x.txt.", { input: 100, output: 20 }),
    ]);
    await swarm.submit(
      briefText({
        title: "Over budget",
        budget: { tokens: 150 },
        plan: plan(
          [{ id: "spender", agent: "builder" }],
          [{ id: "next", agent: "builder", run: ["true"] }],
        ),
      }),
      id,
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_failed");
    if (final.type !== "mission_failed") return;
    expect(final.payload.reason).toBe("budget exceeded: 240 tokens used, the token budget is 150");
    expect(final.payload.usage).toEqual({ input_tokens: 200, output_tokens: 40 });
    expect(swarm.dispatchesOf(id).map((d) => d.task)).toEqual(["spender"]);
  });
});

describe("swarm submit --wait", () => {
  it("exits 0 when the mission completes, 1 when it fails, 2 on a bad brief naming the problem", async () => {
    await orchestrator({ SWARM_MAX_REPLANS: "0" });
    const dir = swarm.workspace;
    const good = path.join(dir, "good.md");
    const failing = path.join(dir, "failing.md");
    const bad = path.join(dir, "bad.md");
    await writeFile(
      good,
      briefText({ title: "Good", plan: plan([{ id: "g", agent: "builder", run: ["true"] }]) }),
    );
    await writeFile(
      failing,
      briefText({
        title: "Failing",
        plan: plan([{ id: "f", agent: "builder", run: ["exit 1"], max_attempts: 1 }]),
      }),
    );
    await writeFile(
      bad,
      briefText({ title: "Bad", plan: plan([{ id: "b", agent: "nobody", run: ["true"] }]) }),
    );

    const [ok, failed, invalid] = await Promise.all([
      runSwarm(["submit", good, "--wait"], swarm.env()),
      runSwarm(["submit", failing, "--wait"], swarm.env()),
      runSwarm(["submit", bad, "--wait"], swarm.env()),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^m-\d{8}-\d{6}-[0-9a-f]{4}\n/);
    expect(ok.stdout).toContain("mission_completed");
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("mission_failed");
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toBe("");
    expect(invalid.stderr).toContain('task b: unknown agent "nobody"');
  });
});
