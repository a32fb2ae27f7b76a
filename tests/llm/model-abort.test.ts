/**
 * ChatOllama never gives a call's abort signal to its HTTP request; a client
 * made with `createChatModel(spec, { signal })` ends its requests when that
 * signal fires. Real ChatOllama against a server that never answers.
 */
import { HumanMessage } from "@langchain/core/messages";
import { afterEach, describe, expect, it } from "vitest";
import { createChatModel } from "../../src/llm/chat-model.ts";
import { startHttpServer } from "../helpers/fake-ollama.ts";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** Accepts `/api/chat` and never answers; says when each request arrives and when its connection closes. */
async function silentOllama() {
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  let closed!: () => void;
  const closing = new Promise<void>((resolve) => (closed = resolve));
  const http = await startHttpServer(async (_req, res) => {
    res.on("close", () => closed());
    arrived();
  });
  closers.push(http.close);
  return { env: { OLLAMA_HOST: `http://127.0.0.1:${http.port}` }, arrival, closing };
}

describe("createChatModel's signal (Ollama)", () => {
  it("ends the HTTP request of a call the server never answered", async () => {
    const server = await silentOllama();
    const ctl = new AbortController();
    const model = createChatModel("ollama:qwen2.5:7b", { env: server.env, signal: ctl.signal });
    const call = model.invoke([new HumanMessage("hello")]);
    const settled = call.then(
      () => "resolved",
      () => "rejected",
    );
    await server.arrival;
    ctl.abort(new Error("task cancelled"));
    // Resolves only when the client dropped the connection.
    await server.closing;
    expect(await settled).toBe("rejected");
  });
});
