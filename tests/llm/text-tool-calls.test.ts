import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { createAgent } from "langchain";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createChatModel } from "../../src/llm/chat-model.ts";
import { recoverToolCalls, textToolCallMiddleware } from "../../src/llm/text-tool-calls.ts";
import { createAgentTools, TOOL_NAMES } from "../../src/tools/agent-tools.ts";
import type { Step } from "../../src/schema/result.ts";
import {
  sequence,
  startFakeOllama,
  textReply,
  type FakeModelServer,
} from "../helpers/fake-ollama.ts";
import { startFakeOpenAI } from "../helpers/fake-openai.ts";

const KNOWN = [...TOOL_NAMES];

describe("recoverToolCalls", () => {
  it("reads a bare JSON call with name/arguments", () => {
    const text = '{"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}';
    expect(recoverToolCalls(text, KNOWN)).toEqual([
      { name: "write_file", args: { path: "a.txt", content: "hi" } },
    ]);
  });

  it("reads tool/args, parameters and OpenAI's function shape with string arguments", () => {
    expect(recoverToolCalls('{"tool": "run_shell", "args": {"command": "ls"}}', KNOWN)).toEqual([
      { name: "run_shell", args: { command: "ls" } },
    ]);
    expect(recoverToolCalls('{"name": "read_file", "parameters": {"path": "x"}}', KNOWN)).toEqual([
      { name: "read_file", args: { path: "x" } },
    ]);
    const fn =
      '{"type": "function", "function": {"name": "list_files", "arguments": "{\\"path\\": \\"src\\"}"}}';
    expect(recoverToolCalls(fn, KNOWN)).toEqual([{ name: "list_files", args: { path: "src" } }]);
  });

  it("finds calls inside a ```json fence with prose around it", () => {
    const text = [
      "I will create the file now.",
      "```json",
      '{"name": "write_file", "arguments": {"path": "src/app.js", "content": "const a = { b: [1, 2] };\\n"}}',
      "```",
      "Then I will test it.",
    ].join("\n");
    expect(recoverToolCalls(text, KNOWN)).toEqual([
      { name: "write_file", args: { path: "src/app.js", content: "const a = { b: [1, 2] };\n" } },
    ]);
  });

  it("finds every Qwen <tool_call> block", () => {
    const text =
      '<tool_call>\n{"name": "run_shell", "arguments": {"command": "npm test"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "read_file", "arguments": {"path": "package.json"}}\n</tool_call>';
    expect(recoverToolCalls(text, KNOWN).map((c) => c.name)).toEqual(["run_shell", "read_file"]);
  });

  it("reads arrays, tool_calls lists, flattened arguments and trailing commas", () => {
    expect(
      recoverToolCalls(
        '[{"name": "list_files"}, {"name": "search_files", "arguments": {"pattern": "TODO",}}]',
        KNOWN,
      ),
    ).toEqual([
      { name: "list_files", args: {} },
      { name: "search_files", args: { pattern: "TODO" } },
    ]);
    expect(
      recoverToolCalls(
        '{"tool_calls": [{"name": "run_shell", "args": {"command": "pwd"}}]}',
        KNOWN,
      ),
    ).toEqual([{ name: "run_shell", args: { command: "pwd" } }]);
    expect(recoverToolCalls('{"name": "run_shell", "command": "ls -la"}', KNOWN)).toEqual([
      { name: "run_shell", args: { command: "ls -la" } },
    ]);
  });

  it("ignores unknown tools, non-object arguments, plain prose and JSON that is not a call", () => {
    expect(recoverToolCalls('{"name": "delete_everything", "arguments": {}}', KNOWN)).toEqual([]);
    expect(recoverToolCalls('{"name": "run_shell", "arguments": "not json"}', KNOWN)).toEqual([]);
    expect(recoverToolCalls("All done. The file {a} is written [see above].", KNOWN)).toEqual([]);
    expect(recoverToolCalls('{"status": "ok", "files": ["a.txt"]}', KNOWN)).toEqual([]);
    expect(recoverToolCalls('{"name": "run_shell", "arguments": {}}', [])).toEqual([]);
  });
});

describe("textToolCallMiddleware in a createAgent loop", () => {
  let workspace: string;
  let fake: FakeModelServer | undefined;
  beforeEach(async () => {
    workspace = await mkdtemp(path.join(os.tmpdir(), "squad-textcalls-"));
  });
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
    await rm(workspace, { recursive: true, force: true });
  });

  it.each([
    { spec: "ollama:qwen2.5:7b", start: startFakeOllama },
    { spec: "openai:local", start: startFakeOpenAI },
  ])("executes a call the model wrote as JSON text ($spec)", async ({ spec, start }) => {
    fake = await start(
      sequence(
        textReply(
          'Sure, I will write it.\n<tool_call>\n{"name": "write_file", "arguments": {"path": "notes.md", "content": "# Notes\\n"}}\n</tool_call>',
        ),
        textReply("The file notes.md is written."),
      ),
    );
    const steps: Step[] = [];
    const tools = createAgentTools({
      workspace,
      allowed: ["write_file", "read_file"],
      shellTimeoutMs: 5_000,
      onStep: (s) => steps.push(s),
    });
    const agent = createAgent({
      model: createChatModel(spec, { env: fake.env }),
      tools,
      middleware: [textToolCallMiddleware(tools.map((t) => t.name))],
    });
    const result = await agent.invoke({ messages: [new HumanMessage("write notes.md")] });

    expect(await readFile(path.join(workspace, "notes.md"), "utf8")).toBe("# Notes\n");
    expect(steps).toMatchObject([{ tool: "write_file", ok: true, args: { path: "notes.md" } }]);
    const rewritten = result.messages.find((m) => AIMessage.isInstance(m) && m.tool_calls?.length);
    expect(rewritten).toBeDefined();
    expect((rewritten as AIMessage).response_metadata.recovered_tool_calls).toBe(1);
    expect(result.messages.some((m) => ToolMessage.isInstance(m) && m.name === "write_file")).toBe(
      true,
    );
    // The second request carried the recovered call and its result back to the model.
    expect(fake.requests).toHaveLength(2);
    expect(JSON.stringify(fake.requests[1]?.messages)).toContain("wrote 8 bytes to notes.md");
  });

  it("leaves a plain final answer alone", async () => {
    fake = await startFakeOllama(sequence(textReply("Nothing to do: the file already exists.")));
    const tools = createAgentTools({
      workspace,
      allowed: ["write_file"],
      shellTimeoutMs: 5_000,
      onStep: () => {},
    });
    const agent = createAgent({
      model: createChatModel("ollama:qwen2.5:7b", { env: fake.env }),
      tools,
      middleware: [textToolCallMiddleware()],
    });
    const result = await agent.invoke({ messages: [new HumanMessage("check")] });
    expect(result.messages.at(-1)?.content).toBe("Nothing to do: the file already exists.");
    expect(fake.requests).toHaveLength(1);
  });
});
