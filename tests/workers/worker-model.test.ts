/**
 * Model-driven tasks in real worker processes: the ReAct agent talks to fake
 * model servers (tests/helpers/fake-ollama.ts, fake-openai.ts) through the
 * real ChatOllama and ChatOpenAI clients. One fake server per protocol
 * serves every task of this file: its script is chosen by the task id the
 * worker put in the prompt ("# Task <id>: ...").
 */
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  lastMessageText,
  sequence,
  startFakeOllama,
  textReply,
  toolCallReply,
  unusedPort,
  type FakeModelServer,
  type FakeRequest,
  type FakeScript,
} from "../helpers/fake-ollama.ts";
import { startFakeOpenAI } from "../helpers/fake-openai.ts";
import { killAllSwarms } from "../helpers/swarm-process.ts";
import {
  assign,
  makeTask,
  newMission,
  spawnWorker,
  startBus,
  type Bus,
  type WorkerProcess,
} from "./worker-harness.ts";

const TOOLS = "[run_shell, read_file, write_file, list_files, search_files]";
const ROSTER = `
agents:
  - name: coder
    description: writes code
    persona: You write code with the tools.
    tools: ${TOOLS}
  - name: gptcoder
    description: writes code with an OpenAI-compatible model
    persona: You write code with the tools.
    tools: ${TOOLS}
    model: openai:gpt-test
  - name: stranded
    description: its model server is down
    persona: You write code with the tools.
    tools: ${TOOLS}
`;

/** Per task id, the script its model conversation follows. */
const scripts = new Map<string, FakeScript>();
const byTask: FakeScript = (req: FakeRequest) => {
  const first = req.messages.find((m) => m.role === "user");
  const id = /^# Task (\S+):/.exec(String(first?.content ?? ""))?.[1];
  const script = id === undefined ? undefined : scripts.get(id);
  if (!script) return { status: 400, error: `no script for task ${id ?? "(none)"}` };
  return script(req);
};

let bus: Bus;
let ollama: FakeModelServer;
let openai: FakeModelServer;
let rosterDir: string;
let deadPort: number;
let coder: WorkerProcess;
let gptcoder: WorkerProcess;
let stranded: WorkerProcess;

beforeAll(async () => {
  bus = await startBus();
  ollama = await startFakeOllama(byTask);
  openai = await startFakeOpenAI(byTask);
  rosterDir = await mkdtemp(path.join(os.tmpdir(), "swarm-roster-"));
  const roster = path.join(rosterDir, "roster.yaml");
  await writeFile(roster, ROSTER);
  deadPort = await unusedPort();
  const common = {
    SWARM_ROSTER: roster,
    SWARM_WORKER_MODEL: "ollama:qwen-test",
    OLLAMA_HOST: ollama.url,
    ...openai.env,
  };
  [coder, gptcoder, stranded] = await Promise.all([
    spawnWorker(bus, "coder", common),
    spawnWorker(bus, "gptcoder", common),
    spawnWorker(bus, "stranded", {
      ...common,
      OLLAMA_HOST: `127.0.0.1:${deadPort}`,
      SWARM_MAX_DELIVER: "2",
      SWARM_MODEL_RETRY_MS: "500",
    }),
  ]);
});

afterAll(async () => {
  await killAllSwarms();
  await ollama?.close();
  await openai?.close();
  await bus?.close();
  if (rosterDir) await rm(rosterDir, { recursive: true, force: true });
});

const ws = (mission: string, ...rel: string[]) => path.join(bus.workspace, mission, ...rel);
const usage = { input: 100, output: 20 };

describe("model-driven tasks in worker processes", () => {
  it("writes a file and runs a command through ChatOllama; steps and usage are in the result", async () => {
    const mission = newMission("ollama");
    scripts.set(
      "hello-ollama",
      sequence(
        toolCallReply(
          "write_file",
          { path: "src/hello.sh", content: "echo hello from $1\n" },
          usage,
        ),
        toolCallReply("run_shell", { command: "bash src/hello.sh swarm" }, usage),
        (req) => textReply(`Wrote src/hello.sh; it said: ${lastMessageText(req).trim()}`, usage),
      ),
    );
    await assign(
      bus,
      mission,
      makeTask({
        id: "hello-ollama",
        agent: "coder",
        title: "Write a greeting script",
        instructions: "Create src/hello.sh that greets its first argument.",
        verify: ["test \"$(bash src/hello.sh x)\" = 'hello from x'"],
      }),
    );
    const done = await bus.events.result(mission, "hello-ollama");
    expect(done.type, done.payload.result.error).toBe("task_completed");
    const { result } = done.payload;
    expect(await readFile(ws(mission, "src/hello.sh"), "utf8")).toBe("echo hello from $1\n");
    expect(result.steps.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", true],
      ["run_shell", true],
    ]);
    expect(result.steps[1]).toMatchObject({
      args: { command: "bash src/hello.sh swarm" },
      exit_code: 0,
      output: "hello from swarm\n",
    });
    expect(result.usage).toEqual({
      model: "ollama:qwen-test",
      input_tokens: 300,
      output_tokens: 60,
    });
    expect(result.summary).toBe("Wrote src/hello.sh; it said: exit_code: 0\nhello from swarm");
    expect(result.verification).toMatchObject([{ ok: true }]);
    expect(bus.events.forTask("task_progress", mission, "hello-ollama")).toHaveLength(2);

    // What the model was given: the persona, the task, the contract's tools.
    const first = ollama.requests.find((r) => /hello-ollama/.test(JSON.stringify(r.messages)))!;
    expect(first.model).toBe("qwen-test");
    expect(first.messages[0]).toMatchObject({
      role: "system",
      content: "You write code with the tools.",
    });
    expect(String(first.messages[1]?.content)).toContain("Create src/hello.sh");
    expect(first.tools.map((t) => (t.function as { name: string }).name).sort()).toEqual([
      "list_files",
      "read_file",
      "run_shell",
      "search_files",
      "write_file",
    ]);
  });

  it("publishes one task_model_called per model call: its tokens, tools, reply and place among the steps", async () => {
    const mission = newMission("calls");
    scripts.set(
      "model-calls",
      sequence(
        toolCallReply("write_file", { path: "a.txt", content: "a\n" }, { input: 111, output: 11 }),
        toolCallReply("run_shell", { command: "cat a.txt" }, { input: 222, output: 22 }),
        // The worker's secret (OPENAI_API_KEY) in a reply is scrubbed like a step's output.
        textReply(`All done <b>bold</b>; the key is ${openai.env.OPENAI_API_KEY}`, {
          input: 333,
          output: 33,
        }),
      ),
    );
    await assign(bus, mission, makeTask({ id: "model-calls", agent: "coder" }));
    const done = await bus.events.result(mission, "model-calls");
    expect(done.type, done.payload.result.error).toBe("task_completed");

    const calls = bus.events.forTask("task_model_called", mission, "model-calls");
    expect(calls.map((e) => e.payload)).toEqual([
      {
        attempt: 1,
        worker: done.payload.result.worker,
        call: 1,
        model: "ollama:qwen-test",
        input_tokens: 111,
        output_tokens: 11,
        duration_ms: expect.any(Number) as number,
        tool_calls: ["write_file"],
        text: "",
        finish_reason: "stop",
        steps_before: 0,
      },
      expect.objectContaining({
        call: 2,
        input_tokens: 222,
        output_tokens: 22,
        tool_calls: ["run_shell"],
        steps_before: 1,
      }),
      expect.objectContaining({
        call: 3,
        input_tokens: 333,
        output_tokens: 33,
        tool_calls: [],
        text: "All done <b>bold</b>; the key is [redacted]",
        steps_before: 2,
      }),
    ]);
    for (const e of calls) expect(e.source).toBe(done.payload.result.worker);
    // They add up to the result's usage, and reach the bus in the order they happened.
    const sum = (k: "input_tokens" | "output_tokens") =>
      calls.reduce((n, e) => n + e.payload[k], 0);
    expect(done.payload.result.usage).toMatchObject({
      input_tokens: sum("input_tokens"),
      output_tokens: sum("output_tokens"),
    });
    const order = bus.events.all
      .filter((e) => e.mission_id === mission && e.task_id === "model-calls")
      .map((e) => (e.type === "task_progress" ? e.payload.step.tool : e.type));
    expect(order).toEqual([
      "task_assigned",
      "task_started",
      "task_model_called",
      "write_file",
      "task_model_called",
      "run_shell",
      "task_model_called",
      "task_completed",
    ]);
  });

  it("recovers a tool call written as JSON text (ChatOpenAI) and executes it", async () => {
    const mission = newMission("textcall");
    scripts.set(
      "text-call",
      sequence(
        textReply(
          'I will write the file now.\n```json\n{"name": "write_file", "arguments": {"path": "notes/plan.md", "content": "# Plan\\n"}}\n```',
          usage,
        ),
        textReply("Wrote notes/plan.md.", usage),
      ),
    );
    await assign(
      bus,
      mission,
      makeTask({
        id: "text-call",
        agent: "gptcoder",
        verify: ["grep -q '^# Plan$' notes/plan.md"],
      }),
    );
    const done = await bus.events.result(mission, "text-call");
    expect(done.type, done.payload.result.error).toBe("task_completed");
    expect(await readFile(ws(mission, "notes/plan.md"), "utf8")).toBe("# Plan\n");
    expect(done.payload.result.steps).toMatchObject([
      { tool: "write_file", ok: true, args: { path: "notes/plan.md" } },
    ]);
    expect(done.payload.result.usage).toEqual({
      model: "openai:gpt-test",
      input_tokens: 200,
      output_tokens: 40,
    });
    // The call's report names the tool recovered from its text, and keeps the text.
    const calls = bus.events.forTask("task_model_called", mission, "text-call");
    expect(
      calls.map((e) => [e.payload.model, e.payload.tool_calls, e.payload.finish_reason]),
    ).toEqual([
      ["openai:gpt-test", ["write_file"], "stop"],
      ["openai:gpt-test", [], "stop"],
    ]);
    expect(calls[0]!.payload.text).toMatch(/^I will write the file now\./);
    // The recovered call's result went back to the model as a tool message.
    const second = openai.requests.filter((r) => /text-call/.test(JSON.stringify(r.messages)))[1];
    expect(second?.messages.at(-1)).toMatchObject({ role: "tool" });
  });

  it("fails a task whose verify check fails, whatever the model claims", async () => {
    const mission = newMission("liar");
    scripts.set(
      "liar",
      sequence(
        toolCallReply("write_file", { path: "answer.txt", content: "41\n" }),
        textReply("Done: answer.txt contains 42 and every check passes."),
      ),
    );
    await assign(
      bus,
      mission,
      makeTask({ id: "liar", agent: "coder", verify: ["grep -qx 42 answer.txt"] }),
    );
    const done = await bus.events.result(mission, "liar");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result).toMatchObject({
      status: "failed",
      error: "verification failed: `grep -qx 42 answer.txt` exited with code 1",
      summary: "Done: answer.txt contains 42 and every check passes.",
      verification: [{ command: "grep -qx 42 answer.txt", ok: false, exit_code: 1 }],
    });
  });

  it("refuses paths that leave the workspace: ../, absolute and through a symlink", async () => {
    const mission = newMission("escape");
    const tag = randomBytes(4).toString("hex");
    const absolute = path.join(os.tmpdir(), `swarm-abs-${tag}.txt`);
    scripts.set(
      "escape",
      sequence(
        toolCallReply("write_file", { path: `../escape-${tag}.txt`, content: "x" }),
        toolCallReply("write_file", { path: absolute, content: "x" }),
        toolCallReply("run_shell", { command: "ln -s .. up" }),
        toolCallReply("write_file", { path: `up/escape-link-${tag}.txt`, content: "x" }),
        toolCallReply("read_file", { path: "up/../../etc/passwd" }),
        textReply("I could not write outside the workspace."),
      ),
    );
    await assign(bus, mission, makeTask({ id: "escape", agent: "coder" }));
    const done = await bus.events.result(mission, "escape");
    const steps = done.payload.result.steps;
    expect(steps.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", false],
      ["write_file", false],
      ["run_shell", true],
      ["write_file", false],
      ["read_file", false],
    ]);
    expect(steps[0]?.output).toMatch(/leaves the workspace/);
    expect(steps[1]?.output).toMatch(/is absolute/);
    expect(steps[3]?.output).toMatch(/leaves the workspace \(through a symlink\)/);
    expect(steps[4]?.output).toMatch(/leaves the workspace/);
    for (const p of [
      path.join(bus.workspace, `escape-${tag}.txt`),
      absolute,
      path.join(bus.workspace, `escape-link-${tag}.txt`),
    ]) {
      await expect(access(p)).rejects.toThrow();
    }
    // The model was told why, so it can correct itself.
    const toolMessages = ollama.requests
      .filter((r) => /escape/.test(JSON.stringify(r.messages)))
      .map((r) => lastMessageText(r));
    expect(toolMessages[1]).toMatch(/^ERROR: path .* leaves the workspace/);
  });

  it("hands the attempt back while the model server is down, then fails it naming the server", async () => {
    const mission = newMission("down");
    await assign(bus, mission, makeTask({ id: "offline", agent: "stranded", max_attempts: 1 }));
    const done = await bus.events.result(mission, "offline", 40_000);
    expect(done.type).toBe("task_failed");
    const { result } = done.payload;
    expect(result.retryable).toBe(false);
    expect(result.error).toContain(
      `ollama:qwen-test is unavailable at http://127.0.0.1:${deadPort}`,
    );
    expect(result.error).toMatch(/ollama serve|OLLAMA_HOST/);
    // Delivery 1 was handed back (no result), delivery 2 was the last (max_deliver 2).
    const starts = bus.events.forTask("task_started", mission, "offline");
    expect(starts.map((s) => s.payload.delivery)).toEqual([1, 2]);
    expect(bus.events.forTask("task_failed", mission, "offline")).toHaveLength(1);
    // Handed back with a delay below the 500 ms ceiling of delivery 1 (full jitter).
    const handedBack = /"retry_in_ms":(\d+),"msg":"model unavailable; attempt handed back"/.exec(
      stranded.stderr(),
    );
    expect(handedBack, stranded.stderr()).not.toBeNull();
    expect(Number(handedBack![1])).toBeLessThanOrEqual(500);
  });

  it("fails a model-driven task over its timeout while the model hangs", async () => {
    const mission = newMission("hang");
    scripts.set("hang", () => ({ hang: true }));
    await assign(bus, mission, makeTask({ id: "hang", agent: "coder", timeout_s: 1 }));
    const done = await bus.events.result(mission, "hang");
    expect(done.type).toBe("task_failed");
    expect(done.payload.result.error).toBe("timed out after 1s");
    expect(done.payload.result.retryable).toBeUndefined();
    expect(coder.worker).toBe(done.payload.result.worker);
    void gptcoder;
  });
});
