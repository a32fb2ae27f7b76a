import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { Usage } from "../../src/schema/result.ts";
import { addUsage, sumUsage } from "../../src/llm/usage.ts";

describe("sumUsage", () => {
  it("sums usage_metadata over the AI messages only", () => {
    const messages = [
      new HumanMessage("do it"),
      new AIMessage({
        content: "",
        tool_calls: [{ id: "1", name: "run_shell", args: { command: "ls" }, type: "tool_call" }],
        usage_metadata: { input_tokens: 100, output_tokens: 20, total_tokens: 120 },
      }),
      new ToolMessage({ content: "exit_code: 0", tool_call_id: "1" }),
      new AIMessage({
        content: "done",
        usage_metadata: { input_tokens: 150, output_tokens: 5, total_tokens: 155 },
      }),
      new AIMessage({ content: "no usage reported" }),
    ];
    const usage = sumUsage(messages, "ollama:qwen2.5:7b");
    expect(usage).toEqual({ model: "ollama:qwen2.5:7b", input_tokens: 250, output_tokens: 25 });
    expect(Usage.parse(usage)).toEqual(usage);
  });

  it("is zero for no model calls, and adds up across runs", () => {
    const none = sumUsage([new HumanMessage("x")], null);
    expect(none).toEqual({ model: null, input_tokens: 0, output_tokens: 0 });
    expect(addUsage(none, { model: "openai:gpt-4.1", input_tokens: 3, output_tokens: 4 })).toEqual({
      model: "openai:gpt-4.1",
      input_tokens: 3,
      output_tokens: 4,
    });
  });
});
