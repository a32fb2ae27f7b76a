import { sendJson, writeOllamaChatReply } from "../llm/ollama-chat-reply.ts";
/**
 * A minimal model server for the model-bound benchmarks: Ollama's `/api/chat`
 * wire protocol (NDJSON stream), so the workers' real ChatOllama client and
 * ReAct agent run unchanged. Each call sleeps a fixed time, then answers:
 *
 *   - a request whose last message is not a tool result gets one tool call
 *     (`list_files {path: "."}`): the agent's first turn;
 *   - a request whose last message is a tool result gets a short final text.
 *
 * So a task costs exactly two model calls. The sleep is `callMs`, unless the
 * prompt holds a marker `bench-call-ms=<n>` (uneven task lengths for the
 * makespan benchmark). Wire logic copied in small from
 * tests/helpers/fake-ollama.ts (src/ does not import tests/).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";

export interface FakeModelServer {
  /** `http://127.0.0.1:<port>`: the OLLAMA_HOST for workers. */
  url: string;
  /** Chat calls answered so far. */
  calls(): number;
  /** Most calls in progress at once so far (the concurrency the swarm achieved). */
  peakConcurrent(): number;
  resetCounters(): void;
  close(): Promise<void>;
}

const ChatRequest = z.object({
  model: z.string(),
  messages: z.array(z.object({ role: z.string(), content: z.unknown().optional() }).loose()),
  stream: z.boolean().optional(),
});

const MARKER = /bench-call-ms=(\d{1,6})/;

/** Per-call delay for a request: the marker in its messages, else the default (pure). */
export function callDelayMs(
  messages: ReadonlyArray<{ content?: unknown }>,
  fallback: number,
): number {
  for (const m of messages) {
    if (typeof m.content !== "string") continue;
    const hit = MARKER.exec(m.content);
    if (hit) return Number(hit[1]);
  }
  return fallback;
}

/** The marker to put in a task's instructions for a per-call delay of `ms`. */
export function callDelayMarker(ms: number): string {
  return `bench-call-ms=${Math.round(ms)}`;
}

export async function startFakeModelServer(opts: { callMs: number }): Promise<FakeModelServer> {
  let calls = 0;
  let inFlight = 0;
  let peak = 0;

  const answer = async (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/api/version") {
      sendJson(res, 200, { version: "0.6.8" });
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/api/chat") {
      sendJson(res, 404, { error: "not found" });
      return;
    }
    let body: z.infer<typeof ChatRequest>;
    try {
      body = ChatRequest.parse(JSON.parse(raw));
    } catch (err) {
      sendJson(res, 400, { error: `bad chat request: ${(err as Error).message}` });
      return;
    }
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      await sleep(callDelayMs(body.messages, opts.callMs));
    } finally {
      inFlight--;
    }
    calls++;
    const afterTool = body.messages.at(-1)?.role === "tool";
    const message = afterTool
      ? { role: "assistant", content: "Done: listed the workspace." }
      : {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { index: 0, name: "list_files", arguments: { path: "." } } }],
        };
    writeOllamaChatReply(res, {
      model: body.model,
      message,
      stream: body.stream !== false,
      usage: { input: 100, output: 10 },
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      answer(req, res, Buffer.concat(chunks).toString("utf8")).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(err) });
        else res.destroy();
      });
    });
  });
  // Many slots keep connections alive; the default limits would queue them.
  server.keepAliveTimeout = 30_000;
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    peakConcurrent: () => peak,
    resetCounters() {
      calls = 0;
      peak = inFlight;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
