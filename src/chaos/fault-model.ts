import { sendJson, writeOllamaChatReply } from "../llm/ollama-chat-reply.ts";
/**
 * A fake Ollama server that fails on purpose: the workers' real ChatOllama
 * client and ReAct agent talk to it over HTTP, and a seeded share of its
 * `/api/chat` calls fail in one of three ways:
 *
 *   http_500   a 500 with Ollama's error body (the client's transport retries it)
 *   timeout    the request is accepted and not answered for `hangMs`, then
 *              its connection is reset, as a proxy's idle timeout does (the
 *              worker's task timeout ends the task long before)
 *   malformed  200 with a body the client can't use: not JSON, a stream cut
 *              in the middle of an object, or JSON of the wrong shape
 *
 * A healthy call plays a two-turn agent: first a `run_shell` tool call with
 * the command the scenario gives for the task (its side effect, counted
 * later), then, once the tool's result is in the conversation, a short final
 * answer. Every call is counted per task (read from the task prompt), so the
 * scenario can show that retries stay bounded: no retry storm.
 * The wire format follows tests/helpers/fake-ollama.ts (src/ does not import tests/).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createPrng } from "./prng.ts";

export const MODEL_FAULTS = ["http_500", "timeout", "malformed"] as const;
export type ModelFault = (typeof MODEL_FAULTS)[number];

export interface FaultModelOptions {
  /** Share of chat calls that fail, 0..1. */
  faultRate: number;
  /** Which faults to draw from (uniformly). Default all three. */
  faults?: readonly ModelFault[];
  seed: number;
  /** How long a `timeout` fault holds the request before resetting it. Default 20 s. */
  hangMs?: number;
  /** The shell command the model runs for a task (its side effect). */
  toolCommand: (taskId: string) => string;
}

export interface ModelCallStats {
  /** Chat calls received. */
  calls: number;
  /** Calls answered normally. */
  ok: number;
  /** Calls failed on purpose, by fault. */
  faults: Record<ModelFault, number>;
  /** Chat calls per task (`<mission>/<task>`). */
  perTask: Record<string, number>;
}

export interface FaultModelServer {
  /** `http://127.0.0.1:<port>`: OLLAMA_HOST of the workers. */
  url: string;
  stats(): ModelCallStats;
  close(): Promise<void>;
}

interface ChatMessage {
  role?: unknown;
  content?: unknown;
}

/** `<mission>/<task>` from the task prompt's `# Task <id>:` line and workspace path, or null. */
export function taskKeyOf(messages: readonly ChatMessage[]): string | null {
  const first = messages.find((m) => m.role === "user");
  const text = typeof first?.content === "string" ? first.content : "";
  const task = /^# Task (\S+):/m.exec(text)?.[1];
  const ws = /Your workspace is (\S+?);/.exec(text)?.[1];
  return task && ws ? `${path.basename(ws)}/${task}` : null;
}

export async function startFaultModelServer(opts: FaultModelOptions): Promise<FaultModelServer> {
  const prng = createPrng(opts.seed);
  const faults = opts.faults ?? MODEL_FAULTS;
  const stats: ModelCallStats = {
    calls: 0,
    ok: 0,
    faults: { http_500: 0, timeout: 0, malformed: 0 },
    perTask: {},
  };

  const chat = (res: ServerResponse, raw: string): void => {
    let body: { model?: unknown; messages?: unknown; stream?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      sendJson(res, 400, { error: "request body is not JSON" });
      return;
    }
    const messages = Array.isArray(body.messages) ? (body.messages as ChatMessage[]) : [];
    const model = typeof body.model === "string" ? body.model : "fake";
    const key = taskKeyOf(messages) ?? "(no task)";
    stats.calls++;
    stats.perTask[key] = (stats.perTask[key] ?? 0) + 1;

    if (prng.chance(opts.faultRate)) {
      const fault = prng.pick(faults);
      stats.faults[fault]++;
      if (fault === "http_500") {
        sendJson(res, 500, { error: "llama runner process has terminated: exit status 2" });
      } else if (fault === "timeout") {
        // Not answered; reset later (the client's abort does not reach its socket: see docs/reliability.md).
        const timer = setTimeout(() => res.destroy(), opts.hangMs ?? 20_000);
        res.on("close", () => clearTimeout(timer));
      } else {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.end(
          prng.pick([
            "this is not json\n",
            `{"model":"${model}","created_at":"2026-01-01T00:00:00Z","message":{"role":"assis`,
            `{"unexpected":true}\n`,
          ]),
        );
      }
      return;
    }

    stats.ok++;
    const afterTool = messages.at(-1)?.role === "tool";
    const task = key.split("/").at(-1) ?? "task";
    const message = afterTool
      ? { role: "assistant", content: `Done: ran the step of ${task}.` }
      : {
          role: "assistant",
          content: "",
          tool_calls: [
            {
              function: {
                index: 0,
                name: "run_shell",
                arguments: { command: opts.toolCommand(task) },
              },
            },
          ],
        };
    writeOllamaChatReply(res, {
      model: model,
      message,
      stream: body.stream !== false,
      usage: { input: 120, output: 12 },
    });
  };

  const route = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/api/version") {
      sendJson(res, 200, { version: "0.6.8" });
    } else if (req.method === "GET" && url.pathname === "/api/tags") {
      sendJson(res, 200, { models: [] });
    } else if (req.method === "POST" && url.pathname === "/api/chat") {
      chat(res, raw);
    } else {
      sendJson(res, 404, { error: "not found" });
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => route(req, res, Buffer.concat(chunks).toString("utf8")));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => structuredClone(stats),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
