import { HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callDelayMarker,
  startFakeModelServer,
  type FakeModelServer,
} from "../../src/bench/fake-model-server.ts";
import { createChatModel } from "../../src/llm/chat-model.ts";

describe("the benchmarks' fake model server, through the real ChatOllama client", () => {
  let server: FakeModelServer;
  beforeAll(async () => {
    server = await startFakeModelServer({ callMs: 1 });
  });
  afterAll(async () => {
    await server.close();
  });

  it("answers a task's first call with a tool call and the call after the tool with text", async () => {
    const model = createChatModel("ollama:bench", { env: { OLLAMA_HOST: server.url } });
    const prompt = new HumanMessage(`do it (${callDelayMarker(2)})`);
    const first = await model.invoke([prompt]);
    expect(first.tool_calls?.[0]).toMatchObject({ name: "list_files", args: { path: "." } });
    const history: BaseMessage[] = [
      prompt,
      first,
      new ToolMessage({ content: "(empty)", tool_call_id: first.tool_calls?.[0]?.id ?? "x" }),
    ];
    const second = await model.invoke(history);
    expect(second.tool_calls ?? []).toEqual([]);
    expect(second.content).toContain("Done");
    expect(server.calls()).toBe(2);
    expect(server.peakConcurrent()).toBe(1);
  });

  it("counts calls in flight at once", async () => {
    server.resetCounters();
    const model = createChatModel("ollama:bench", { env: { OLLAMA_HOST: server.url } });
    await Promise.all(
      Array.from({ length: 3 }, () => model.invoke([new HumanMessage(callDelayMarker(50))])),
    );
    expect(server.calls()).toBe(3);
    expect(server.peakConcurrent()).toBe(3);
  });

  it("refuses a request that is not a chat request", async () => {
    const res = await fetch(`${server.url}/api/chat`, { method: "POST", body: "{}" });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/bad chat request/);
  });
});
