import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HumanMessage, type AIMessageChunk } from "@langchain/core/messages";
import { createAgent } from "langchain";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { BadInputError, exitCodeFor } from "../../src/errors.ts";
import { createChatModel } from "../../src/llm/chat-model.ts";
import { classifyModelError, ModelUnavailableError } from "../../src/llm/errors.ts";
import { resolveModelEndpoint } from "../../src/llm/model-endpoint.ts";
import { sumUsage } from "../../src/llm/usage.ts";
import { createAgentTools } from "../../src/tools/agent-tools.ts";
import type { Step } from "../../src/schema/result.ts";
import {
  errorReply,
  lastMessageText,
  sequence,
  startFakeOllama,
  textReply,
  toolCallReply,
  unusedPort,
  type FakeModelServer,
  type FakeScript,
} from "../helpers/fake-ollama.ts";
import { startFakeOpenAI } from "../helpers/fake-openai.ts";

let workspace: string;
const servers: FakeModelServer[] = [];

beforeEach(async () => {
  workspace = await mkdtemp(path.join(os.tmpdir(), "squad-llm-"));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await rm(workspace, { recursive: true, force: true });
});

const PROVIDERS = [
  { spec: "ollama:qwen2.5:7b", start: startFakeOllama },
  { spec: "openai:gpt-4.1-mini", start: startFakeOpenAI },
] as const;

async function serve(start: (s: FakeScript) => Promise<FakeModelServer>, script: FakeScript) {
  const server = await start(script);
  servers.push(server);
  return server;
}

/** Invoke a model and classify the error the way a worker does. */
async function invokeError(spec: string, env: Record<string, string>, opts = {}): Promise<Error> {
  const model = createChatModel(spec, { env, ...opts });
  try {
    await model.invoke([new HumanMessage("hello")]);
  } catch (err) {
    return classifyModelError(err, spec, resolveModelEndpoint(spec, env).url);
  }
  throw new Error("expected the model call to fail");
}

describe.each(PROVIDERS)("createAgent with $spec through the real client", ({ spec, start }) => {
  it("writes a file, runs a command, records steps and sums token usage", async () => {
    const fake = await serve(
      start,
      sequence(
        toolCallReply(
          "write_file",
          { path: "out/hello.txt", content: "hello world\n" },
          { input: 120, output: 15 },
        ),
        (req) => {
          // The model sees the tool's answer before deciding the next step.
          expect(lastMessageText(req)).toContain("wrote 12 bytes to out/hello.txt");
          return toolCallReply(
            "run_shell",
            { command: "wc -c < out/hello.txt" },
            { input: 200, output: 12 },
          );
        },
        (req) =>
          textReply(`Done: ${lastMessageText(req).split("\n")[0]}`, { input: 260, output: 8 }),
      ),
    );
    const steps: Step[] = [];
    const tools = createAgentTools({
      workspace,
      allowed: ["run_shell", "write_file", "read_file"],
      shellTimeoutMs: 10_000,
      onStep: (s) => steps.push(s),
    });
    const agent = createAgent({
      model: createChatModel(spec, { env: fake.env }),
      tools,
      systemPrompt: "You are a builder. Use the tools.",
    });
    const result = await agent.invoke({
      messages: [new HumanMessage("write hello.txt and count it")],
    });

    expect(await readFile(path.join(workspace, "out/hello.txt"), "utf8")).toBe("hello world\n");
    expect(steps.map((s) => [s.tool, s.ok, s.exit_code])).toEqual([
      ["write_file", true, undefined],
      ["run_shell", true, 0],
    ]);
    expect(steps[1]?.output.trim()).toBe("12");
    expect(sumUsage(result.messages, spec)).toEqual({
      model: spec,
      input_tokens: 580,
      output_tokens: 35,
    });
    expect(result.messages.at(-1)?.content).toBe("Done: exit_code: 0");

    // The tools went out on the wire with the contract's names.
    const sentTools = fake.requests[0]?.tools.map((t) => (t.function as { name: string }).name);
    expect(sentTools).toEqual(["run_shell", "read_file", "write_file"]);
    expect(fake.requests).toHaveLength(3);
  });

  it("works with withStructuredOutput", async () => {
    const fake = await serve(start, sequence(textReply('{"title": "Plan", "steps": 3}')));
    const model = createChatModel(spec, { env: fake.env });
    const out = await model
      .withStructuredOutput(z.object({ title: z.string(), steps: z.number() }))
      .invoke([new HumanMessage("plan it")]);
    expect(out).toEqual({ title: "Plan", steps: 3 });
  });

  it("turns a server that is down into ModelUnavailableError naming the URL", async () => {
    const port = await unusedPort();
    const env: Record<string, string> = spec.startsWith("ollama")
      ? { OLLAMA_HOST: `127.0.0.1:${port}` }
      : { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` };
    const err = await invokeError(spec, env, { maxRetries: 1 });
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect(err.message).toContain(`http://127.0.0.1:${port}`);
    expect(err.message).toContain(spec);
    expect((err as ModelUnavailableError).reason).toBe("unreachable");
    expect(exitCodeFor(err)).toBe(3);
  });

  it("turns 'model not found' out of a createAgent run into ModelUnavailableError", async () => {
    const fake = await serve(start, sequence(errorReply(404)));
    const agent = createAgent({ model: createChatModel(spec, { env: fake.env }), tools: [] });
    const err = await agent.invoke({ messages: [new HumanMessage("hello")] }).then(
      () => new Error("expected the run to fail"),
      (e: unknown) => classifyModelError(e, spec, resolveModelEndpoint(spec, fake.env).url),
    );
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as ModelUnavailableError).reason).toBe("model_not_found");
    expect(err.message).toContain(fake.url);
    // 404 is not retried.
    expect(fake.requests).toHaveLength(1);
  });

  it("retries 5xx answers and then succeeds", async () => {
    const fake = await serve(
      start,
      sequence(errorReply(500), errorReply(503), textReply("third time lucky")),
    );
    const model = createChatModel(spec, { env: fake.env, maxRetries: 2 });
    const answer = await model.invoke([new HumanMessage("hello")]);
    expect(answer.content).toBe("third time lucky");
    expect(fake.requests).toHaveLength(3);
  });

  it("gives up after the bounded retries with ModelUnavailableError", async () => {
    const fake = await serve(start, sequence(errorReply(500), errorReply(500), errorReply(500)));
    const err = await invokeError(spec, fake.env, { maxRetries: 1 });
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as ModelUnavailableError).reason).toBe("server_error");
    expect(fake.requests).toHaveLength(2);
  });

  it("fails a server that accepts the request and never answers, instead of hanging", async () => {
    const fake = await serve(start, sequence({ hang: true }));
    const err = await invokeError(spec, fake.env, { timeoutMs: 300, maxRetries: 0 });
    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect((err as ModelUnavailableError).reason).toBe("timeout");
  });
});

describe("createChatModel configuration", () => {
  it("sends num_ctx (default 8192) and the temperature to Ollama", async () => {
    const fake = await serve(startFakeOllama, sequence(textReply("a"), textReply("b")));
    await createChatModel("ollama:qwen2.5:7b", { env: fake.env }).invoke("x");
    await createChatModel("ollama:qwen2.5:7b", {
      env: fake.env,
      numCtx: 4096,
      temperature: 0.1,
    }).invoke("x");
    expect(fake.requests[0]?.body.options).toMatchObject({ num_ctx: 8192 });
    expect(fake.requests[1]?.body.options).toMatchObject({ num_ctx: 4096, temperature: 0.1 });
    expect(fake.requests[0]?.model).toBe("qwen2.5:7b");
  });

  it("uses a placeholder key for a local OpenAI-compatible server, and never streams on invoke", async () => {
    const fake = await serve(startFakeOpenAI, sequence(textReply("ok")));
    await createChatModel("openai:local-model", { env: { OPENAI_BASE_URL: fake.url } }).invoke("x");
    expect(fake.requests[0]?.body.stream).not.toBe(true);
    expect(fake.requests[0]?.model).toBe("local-model");
  });

  it("streams from the OpenAI fake over SSE, tool calls and usage included", async () => {
    const fake = await serve(
      startFakeOpenAI,
      sequence({
        content: "Let me look.",
        toolCalls: [{ name: "read_file", args: { path: "src/app.ts" } }],
        usage: { input: 42, output: 7 },
      }),
    );
    const model = createChatModel("openai:gpt-4.1-mini", { env: fake.env });
    let merged: AIMessageChunk | undefined;
    for await (const chunk of await model.stream([new HumanMessage("look")])) {
      merged = merged ? merged.concat(chunk) : chunk;
    }
    expect(fake.requests[0]?.body.stream).toBe(true);
    expect(merged?.content).toBe("Let me look.");
    expect(merged?.tool_calls).toMatchObject([{ name: "read_file", args: { path: "src/app.ts" } }]);
    expect(merged?.usage_metadata).toMatchObject({ input_tokens: 42, output_tokens: 7 });
  });

  it("refuses openai: with neither a key nor a base URL", () => {
    expect(() => createChatModel("openai:gpt-4.1", { env: {} })).toThrow(BadInputError);
    expect(() => createChatModel("openai:gpt-4.1", { env: {} })).toThrow(/OPENAI_API_KEY/);
  });

  it("passes other errors through unchanged", () => {
    const err = new Error("400 bad request: tools must be an array");
    expect(classifyModelError(err, "ollama:x", "http://h:1")).toBe(err);
  });
});
