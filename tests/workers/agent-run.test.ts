/**
 * runAgentTask on its own (no bus): tasks share one agent per (model,
 * persona, tools) and get their workspace, steps, budget, usage and abort
 * through LangChain's runtime context. Real ChatOllama against fake Ollama
 * servers.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Step } from "../../src/schema/result.ts";
import type { ModelCall } from "../../src/workers/model-call.ts";
import {
  runAgentTask,
  type AgentRunInput,
  type AgentRunOutput,
} from "../../src/workers/agent-run.ts";
import {
  lastMessageText,
  parseBody,
  startFakeOllama,
  startHttpServer,
  textReply,
  toFakeRequest,
  toolCallReply,
  type FakeModelServer,
  type FakeRequest,
} from "../helpers/fake-ollama.ts";
import { makeTask } from "./worker-harness.ts";

const SPEC = "ollama:qwen-test";
const PERSONA = "You are a test agent.";
const TOOLS = ["run_shell", "read_file", "write_file", "list_files"];

const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];

beforeEach(() => {
  dirs.length = 0;
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function workspace(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "squad-agent-run-"));
  dirs.push(dir);
  return dir;
}

async function ollama(script: Parameters<typeof startFakeOllama>[0]): Promise<FakeModelServer> {
  const server = await startFakeOllama(script);
  closers.push(server.close);
  return server;
}

function input(
  over: Partial<AgentRunInput> & Pick<AgentRunInput, "task" | "workspace" | "env">,
): AgentRunInput {
  return {
    persona: PERSONA,
    toolNames: TOOLS,
    modelSpec: SPEC,
    signal: new AbortController().signal,
    onStep: () => undefined,
    maxModelCalls: 8,
    deadline: Date.now() + 60_000,
    ...over,
  };
}

/** A tester task in a fresh workspace, through the real agent run. */
async function runTester(
  id: string,
  env: NodeJS.ProcessEnv,
  over: Partial<AgentRunInput> = {},
): Promise<AgentRunOutput> {
  return runAgentTask(
    input({ task: makeTask({ id, agent: "tester" }), workspace: await workspace(), env, ...over }),
  );
}

/** The task id the prompt names (`# Task t1: ...`). */
function taskIdOf(req: FakeRequest): string {
  const prompt = req.messages.find((m) => m.role === "user")?.content;
  return /# Task (\S+):/.exec(String(prompt))?.[1] ?? "?";
}

describe("runAgentTask", () => {
  it("runs concurrent tasks on the shared agent, each with its own workspace, steps and usage", async () => {
    const ids = ["t1", "t2", "t3"];
    // Every first call waits for the others: the tasks are in flight together.
    let firstCalls = 0;
    let allArrived!: () => void;
    const together = new Promise<void>((resolve) => (allArrived = resolve));
    const fake = await ollama(async (req) => {
      const id = taskIdOf(req);
      const n = Number(id.slice(1));
      if (req.messages.at(-1)?.role === "tool") {
        return textReply(`done ${id}`, { input: 10 * n, output: n });
      }
      if (++firstCalls === ids.length) allArrived();
      await together;
      return toolCallReply(
        "write_file",
        { path: "mine.txt", content: id },
        { input: 100 * n, output: n },
      );
    });
    const spaces = await Promise.all(ids.map(() => workspace()));
    const steps = ids.map((): Step[] => []);
    const outs = await Promise.all(
      ids.map((id, i) =>
        runAgentTask(
          input({
            task: makeTask({ id, agent: "tester" }),
            workspace: spaces[i]!,
            env: fake.env,
            onStep: (s) => steps[i]!.push(s),
          }),
        ),
      ),
    );

    for (const [i, id] of ids.entries()) {
      const n = i + 1;
      expect(await readFile(path.join(spaces[i]!, "mine.txt"), "utf8")).toBe(id);
      expect(steps[i]!.map((s) => [s.tool, s.args, s.ok])).toEqual([
        ["write_file", { path: "mine.txt", content: id }, true],
      ]);
      expect(outs[i]).toEqual({
        summary: `done ${id}`,
        usage: { model: SPEC, input_tokens: 110 * n, output_tokens: 2 * n },
        toolCalls: 1,
        modelCalls: 2,
        limitReached: false,
      });
    }
  });

  it("stops at the task's model-call budget and keeps the model's last words", async () => {
    const fake = await ollama((req) => ({
      content: `checking again (${req.index + 1})`,
      ...toolCallReply("list_files", {}, { input: 10, output: 2 }),
    }));
    const calls: ModelCall[] = [];
    const out = await runTester("t1", fake.env, {
      maxModelCalls: 2,
      onModelCall: (c) => calls.push(c),
    });
    expect(fake.requests).toHaveLength(2);
    // One report per call made; the call the budget stopped is none.
    expect(
      calls.map((c) => [c.call, c.tool_calls, c.text, c.input_tokens, c.steps_before]),
    ).toEqual([
      [1, ["list_files"], "checking again (1)", 10, 0],
      [2, ["list_files"], "checking again (2)", 10, 1],
    ]);
    expect(out).toEqual({
      summary:
        "stopped at the limit of 2 model calls, after 2 tool call(s); last words: checking again (2)",
      usage: { model: SPEC, input_tokens: 20, output_tokens: 4 },
      toolCalls: 2,
      modelCalls: 2,
      limitReached: true,
    });

    // A second task on the same agent starts with a budget of its own.
    const again = await runTester("t2", fake.env, { maxModelCalls: 1 });
    expect(again).toMatchObject({ modelCalls: 1, toolCalls: 1, limitReached: true });
    expect(fake.requests).toHaveLength(3);
  });

  it("counts the nudge run against the same budget", async () => {
    const fake = await ollama((req) =>
      lastMessageText(req).includes("You have not called any tool")
        ? toolCallReply("list_files", {})
        : textReply("I would list the files."),
    );
    const calls: ModelCall[] = [];
    const out = await runTester("t1", fake.env, {
      maxModelCalls: 2,
      onModelCall: (c) => calls.push(c),
    });
    expect(fake.requests).toHaveLength(2);
    expect(out).toMatchObject({ modelCalls: 2, toolCalls: 1, limitReached: true });
    // The nudged run goes on counting.
    expect(calls.map((c) => [c.call, c.tool_calls])).toEqual([
      [1, []],
      [2, ["list_files"]],
    ]);
  });
});

/**
 * An Ollama `/api/chat` that streams a first NDJSON line (or, `silent`, sends
 * nothing at all), then holds the rest of each answer until `release()` (built on the fake-ollama helper's HTTP
 * plumbing, to see the connections).
 */
async function stallingOllama(opts: { silent?: boolean } = {}) {
  const held = new Map<
    string,
    { res: ServerResponse; closed: Promise<void>; body: Record<string, unknown> }
  >();
  const arrivals: Array<() => void> = [];
  const http = await startHttpServer(async (req, res, raw) => {
    if (req.method !== "POST" || req.url !== "/api/chat") {
      res.writeHead(404).end();
      return;
    }
    const closed = new Promise<void>((resolve) => res.on("close", () => resolve()));
    const body = parseBody(raw);
    held.set(taskIdOf(toFakeRequest(held.size, body)), { res, closed, body });
    if (opts.silent) {
      // Not even the headers: what a wedged server does.
      arrivals.splice(0).forEach((wake) => wake());
      return;
    }
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(
      `${JSON.stringify({ model: body.model, created_at: new Date().toISOString(), message: { role: "assistant", content: "thinking " }, done: false })}\n`,
    );
    arrivals.splice(0).forEach((wake) => wake());
  });
  closers.push(http.close);
  return {
    env: { OLLAMA_HOST: `http://127.0.0.1:${http.port}` },
    /** Resolves once `n` chat requests have arrived. */
    async requests(n: number): Promise<void> {
      while (held.size < n) await new Promise<void>((resolve) => arrivals.push(resolve));
    },
    /** Resolves when the client dropped the connection of the task's held call. */
    closed: (taskId: string) => held.get(taskId)!.closed,
    /** Finishes every held answer whose connection is still open, as a final text. */
    release(): void {
      for (const { res, body } of held.values()) {
        if (res.destroyed || res.writableEnded) continue;
        res.end(
          `${JSON.stringify({ model: body.model, created_at: new Date().toISOString(), message: { role: "assistant", content: "finished" }, done: true, done_reason: "stop", prompt_eval_count: 7, eval_count: 3 })}\n`,
        );
      }
    },
  };
}

describe("runAgentTask abort", () => {
  it("cancels an aborted task's model call that the server never answered", async () => {
    const server = await stallingOllama({ silent: true });
    const ctl = new AbortController();
    const calls: ModelCall[] = [];
    const run = runTester("t1", server.env, {
      signal: ctl.signal,
      onModelCall: (c) => calls.push(c),
    });
    await server.requests(1);
    ctl.abort("timeout");
    // Resolves only when the client dropped the connection: a hung call no longer holds it.
    await server.closed("t1");
    expect(await run).toMatchObject({ summary: "", modelCalls: 1 });
    // A call that never answered is not reported.
    expect(calls).toEqual([]);
  });

  it("one task's abort leaves a concurrent task's model call on the shared agent alone", async () => {
    const server = await stallingOllama();
    const a = new AbortController();
    const runA = runTester("t1", server.env, { signal: a.signal });
    const runB = runTester("t2", server.env, { maxModelCalls: 1 });
    await server.requests(2);
    a.abort("cancel");
    await server.closed("t1");
    server.release();
    expect(await runA).toMatchObject({ summary: "", modelCalls: 1 });
    expect(await runB).toEqual({
      summary:
        "stopped at the limit of 1 model calls, after 0 tool call(s); last words: thinking finished",
      usage: { model: SPEC, input_tokens: 7, output_tokens: 3 },
      toolCalls: 0,
      modelCalls: 1,
      limitReached: true,
    });
  });
});
