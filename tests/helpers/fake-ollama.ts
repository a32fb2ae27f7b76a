/**
 * Fake model servers for tests: real HTTP servers on 127.0.0.1 (random port)
 * that speak the wire protocols, so the REAL clients (ChatOllama, ChatOpenAI)
 * are exercised end to end. This file holds the Ollama server and the parts
 * shared with `fake-openai.ts` (which re-exports them).
 *
 *   import { startFakeOllama, sequence, toolCallReply, textReply } from "../helpers/fake-ollama.ts";
 *
 *   const ollama = await startFakeOllama(
 *     sequence(
 *       toolCallReply("write_file", { path: "a.txt", content: "hi" }),
 *       (req) => textReply(`done after ${req.messages.length} messages`),
 *     ),
 *   );
 *   const model = createChatModel("ollama:qwen2.5:7b", { env: ollama.env });
 *   ...
 *   expect(ollama.requests[1]?.messages.at(-1)).toMatchObject({ role: "tool" });
 *   await ollama.close();
 *
 * A script is `(req: FakeRequest) => FakeReply | Promise<FakeReply>`, called
 * once per chat request. `req` has `index` (0-based count of chat requests to
 * this server), `model`, `messages` and `tools` as the client sent them (wire
 * format), and the whole parsed `body`.
 *
 * FakeReply (every field optional):
 *   content    assistant text
 *   toolCalls  [{ name, args }]: Ollama sends `arguments` as an object,
 *              OpenAI as a JSON string, each as its protocol says
 *   usage      { input, output } token counts (default: ~chars/4 of the
 *              request messages and of the reply); Ollama reports them as
 *              prompt_eval_count/eval_count, OpenAI as usage.prompt_tokens/...
 *   status     answer with this HTTP status and the provider's error body
 *              (e.g. 404 → Ollama `{"error":"model 'x' not found"}`)
 *   error      the error message for `status` (a default per status otherwise)
 *   delayMs    wait this long before answering
 *   malformed  answer 200 with a body the client can not parse
 *   hang       accept the request and never answer (close() ends it)
 *
 * Helpers: `sequence(...replies)` answers the i-th request with the i-th
 * reply (a reply may be a script, called with the request); past the end it
 * answers 400 "fake script exhausted" so an unexpected extra call fails
 * loudly instead of being retried. `textReply`, `toolCallReply`,
 * `errorReply` build replies; `lastMessageText(req)` reads what the model
 * was last told (e.g. a tool's output); `unusedPort()` gives a port nothing
 * listens on, for "model server down" tests.
 *
 * The handle: `url` (Ollama: the server root, for OLLAMA_HOST; OpenAI: the
 * `/v1` base, for OPENAI_BASE_URL), `env` (the variables to pass as
 * `createChatModel(spec, { env })`), `requests` (every chat request, in
 * order) and `close()` (also ends hanging requests).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface FakeToolCall {
  name: string;
  args: Record<string, unknown>;
}

export interface FakeReply {
  content?: string;
  toolCalls?: FakeToolCall[];
  usage?: { input: number; output: number };
  status?: number;
  error?: string;
  delayMs?: number;
  malformed?: boolean;
  hang?: boolean;
}

export interface FakeRequest {
  /** 0-based count of chat requests this server received. */
  index: number;
  model: string;
  /** As sent on the wire. */
  messages: Array<Record<string, unknown>>;
  tools: Array<Record<string, unknown>>;
  body: Record<string, unknown>;
}

export type FakeScript = (req: FakeRequest) => FakeReply | Promise<FakeReply>;

export interface FakeModelServer {
  /** Ollama: `http://127.0.0.1:<port>`; OpenAI: `http://127.0.0.1:<port>/v1`. */
  url: string;
  /** Environment for `createChatModel(spec, { env })`. */
  env: Record<string, string>;
  /** Every chat request, in arrival order. */
  requests: FakeRequest[];
  close(): Promise<void>;
}

export function textReply(content: string, usage?: { input: number; output: number }): FakeReply {
  return usage ? { content, usage } : { content };
}

export function toolCallReply(
  name: string,
  args: Record<string, unknown>,
  usage?: { input: number; output: number },
): FakeReply {
  return usage ? { toolCalls: [{ name, args }], usage } : { toolCalls: [{ name, args }] };
}

export function errorReply(status: number, error?: string): FakeReply {
  return error === undefined ? { status } : { status, error };
}

/** Answers request i with reply i; replies may be scripts. Past the end: 400. */
export function sequence(...replies: Array<FakeReply | FakeScript>): FakeScript {
  let i = 0;
  return async (req) => {
    const next = replies[i++];
    if (next === undefined) {
      return {
        status: 400,
        error: `fake script exhausted: ${replies.length} replies scripted, this is request ${i}`,
      };
    }
    return typeof next === "function" ? next(req) : next;
  };
}

/** The text of the last message of a request (string content or text parts). */
export function lastMessageText(req: FakeRequest): string {
  const content = req.messages.at(-1)?.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === "object" && p !== null && "text" in p ? String(p.text) : ""))
      .join("");
  }
  return "";
}

/** Default token counts: about four characters a token, never zero. */
export function defaultUsage(
  req: FakeRequest,
  reply: FakeReply,
): { input: number; output: number } {
  const input = Math.max(1, Math.ceil(JSON.stringify(req.messages).length / 4));
  const out = (reply.content ?? "") + JSON.stringify(reply.toolCalls ?? []);
  return { input, output: Math.max(1, Math.ceil(out.length / 4)) };
}

/** A local port nothing listens on (bound, then released), for "server down" tests. */
export async function unusedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ---- shared HTTP plumbing (used by fake-openai.ts too) ----

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: string,
) => Promise<void>;

/** An HTTP server on 127.0.0.1:<random> whose close() also ends open (hanging) requests. */
export async function startHttpServer(
  handler: RouteHandler,
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handler(req, res, Buffer.concat(chunks).toString("utf8")).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: `fake server failed: ${String(err)}` }));
        } else {
          res.destroy();
        }
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, port, close };
}

export function parseBody(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(value));
}

/** Runs the script and applies the reply's delay; a script that throws becomes a 400 reply. */
export async function runScript(script: FakeScript, req: FakeRequest): Promise<FakeReply> {
  let reply: FakeReply;
  try {
    reply = await script(req);
  } catch (err) {
    reply = { status: 400, error: `fake script threw: ${String(err)}` };
  }
  if (reply.delayMs) await sleep(reply.delayMs);
  return reply;
}

/** Splits text into a few stream chunks, as a server streams tokens. */
export function chunksOf(text: string): string[] {
  if (text === "") return [];
  const size = Math.max(1, Math.ceil(text.length / 3));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function asArray(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
}

export function toFakeRequest(index: number, body: Record<string, unknown>): FakeRequest {
  return {
    index,
    model: typeof body.model === "string" ? body.model : "",
    messages: asArray(body.messages),
    tools: asArray(body.tools),
    body,
  };
}

// ---- Ollama ----

export interface FakeOllamaOptions {
  /** Names `/api/tags` lists (ChatOllama only asks when checkOrPullModel is set). */
  models?: string[];
}

/** Ollama's `/api/chat` (NDJSON stream, or one JSON with `stream: false`), `/api/tags`, `/api/show`, `/api/version`. */
export async function startFakeOllama(
  script: FakeScript,
  opts: FakeOllamaOptions = {},
): Promise<FakeModelServer> {
  const requests: FakeRequest[] = [];
  const models = opts.models ?? [];
  const http = await startHttpServer(async (req, res, raw) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && (url.pathname === "/" || url.pathname === "")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("Ollama is running");
      return;
    }
    if (req.method === "GET" && url.pathname === "/api/version") {
      sendJson(res, 200, { version: "0.6.8" });
      return;
    }
    if (req.method === "GET" && url.pathname === "/api/tags") {
      sendJson(res, 200, {
        models: models.map((name) => ({
          name,
          model: name,
          modified_at: new Date(0).toISOString(),
          size: 1,
          digest: "0".repeat(64),
          details: {
            format: "gguf",
            family: "fake",
            parameter_size: "7B",
            quantization_level: "Q4_K_M",
          },
        })),
      });
      return;
    }
    if (req.method === "POST" && url.pathname === "/api/show") {
      const body = parseBody(raw);
      const name = String(body.model ?? body.name ?? "");
      if (models.length > 0 && !models.includes(name)) {
        sendJson(res, 404, { error: `model '${name}' not found` });
        return;
      }
      sendJson(res, 200, {
        modelfile: "",
        parameters: "",
        template: "{{ .Prompt }}",
        details: {
          format: "gguf",
          family: "fake",
          parameter_size: "7B",
          quantization_level: "Q4_K_M",
        },
        model_info: {},
        capabilities: ["completion", "tools"],
      });
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/api/chat") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("404 page not found");
      return;
    }

    const body = parseBody(raw);
    const fakeReq = toFakeRequest(requests.length, body);
    requests.push(fakeReq);
    const reply = await runScript(script, fakeReq);
    if (reply.hang) return; // never answer; close() destroys the socket
    if (reply.status !== undefined && (reply.status < 200 || reply.status > 299)) {
      sendJson(res, reply.status, {
        error: reply.error ?? ollamaErrorText(reply.status, fakeReq.model),
      });
      return;
    }
    if (reply.malformed) {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end('this is not json\n{"model": \n');
      return;
    }

    const usage = reply.usage ?? defaultUsage(fakeReq, reply);
    const base = () => ({ model: fakeReq.model, created_at: new Date().toISOString() });
    const toolCalls = (reply.toolCalls ?? []).map((c, index) => ({
      function: { index, name: c.name, arguments: c.args },
    }));
    const final = {
      ...base(),
      done: true,
      done_reason: "stop",
      total_duration: 1_000_000,
      load_duration: 1_000,
      prompt_eval_count: usage.input,
      prompt_eval_duration: 1_000,
      eval_count: usage.output,
      eval_duration: 1_000,
    };

    if (body.stream === false) {
      sendJson(res, 200, {
        ...final,
        message: {
          role: "assistant",
          content: reply.content ?? "",
          ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
        },
      });
      return;
    }
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    const line = (v: unknown) => res.write(`${JSON.stringify(v)}\n`);
    for (const piece of chunksOf(reply.content ?? "")) {
      line({ ...base(), message: { role: "assistant", content: piece }, done: false });
    }
    if (toolCalls.length) {
      line({
        ...base(),
        message: { role: "assistant", content: "", tool_calls: toolCalls },
        done: false,
      });
    }
    line({ ...final, message: { role: "assistant", content: "" } });
    res.end();
  });

  const url = `http://127.0.0.1:${http.port}`;
  return { url, env: { OLLAMA_HOST: url }, requests, close: http.close };
}

function ollamaErrorText(status: number, model: string): string {
  if (status === 404) return `model '${model}' not found`;
  if (status >= 500) return "llama runner process has terminated: exit status 2";
  return `fake error ${status}`;
}
