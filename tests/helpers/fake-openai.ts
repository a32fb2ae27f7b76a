/**
 * A fake OpenAI-compatible server (`POST /v1/chat/completions`, JSON or SSE
 * when `stream: true`; `GET /v1/models`) for the real ChatOpenAI client.
 * Same script and reply API as the Ollama fake (see fake-ollama.ts, whose
 * helpers are re-exported here):
 *
 *   const openai = await startFakeOpenAI(sequence(toolCallReply("read_file", { path: "a" }), textReply("ok")));
 *   const model = createChatModel("openai:gpt-4.1-mini", { env: openai.env });
 *
 * `url` is the `/v1` base (OPENAI_BASE_URL); `env` also sets a dummy
 * OPENAI_API_KEY. Tool-call arguments go out as JSON strings, usage as
 * `usage.prompt_tokens/completion_tokens` (streamed as a last chunk when the
 * client asks with `stream_options.include_usage`). Errors use OpenAI's body
 * `{"error": {"message", "type", "param", "code"}}`.
 */
import type { ServerResponse } from "node:http";
import {
  chunksOf,
  defaultUsage,
  parseBody,
  runScript,
  sendJson,
  startHttpServer,
  toFakeRequest,
  type FakeModelServer,
  type FakeReply,
  type FakeRequest,
  type FakeScript,
} from "./fake-ollama.ts";

export {
  errorReply,
  lastMessageText,
  sequence,
  textReply,
  toolCallReply,
  unusedPort,
  type FakeModelServer,
  type FakeReply,
  type FakeRequest,
  type FakeScript,
  type FakeToolCall,
} from "./fake-ollama.ts";

export interface FakeOpenAIOptions {
  /** Ids `/v1/models` lists. */
  models?: string[];
}

export async function startFakeOpenAI(
  script: FakeScript,
  opts: FakeOpenAIOptions = {},
): Promise<FakeModelServer> {
  const requests: FakeRequest[] = [];
  let completionId = 0;
  const http = await startHttpServer(async (req, res, raw) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/v1/models") {
      sendJson(res, 200, {
        object: "list",
        data: (opts.models ?? []).map((id) => ({
          id,
          object: "model",
          created: 0,
          owned_by: "fake",
        })),
      });
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      sendError(
        res,
        404,
        `Unknown request URL: ${req.method} ${url.pathname}`,
        "invalid_request_error",
        "unknown_url",
      );
      return;
    }

    const body = parseBody(raw);
    const fakeReq = toFakeRequest(requests.length, body);
    requests.push(fakeReq);
    const reply = await runScript(script, fakeReq);
    if (reply.hang) return;
    if (reply.status !== undefined && (reply.status < 200 || reply.status > 299)) {
      const [type, code] = errorKind(reply.status);
      sendError(
        res,
        reply.status,
        reply.error ?? defaultErrorText(reply.status, fakeReq.model),
        type,
        code,
      );
      return;
    }
    const id = `chatcmpl-fake-${++completionId}`;
    const created = Math.floor(Date.now() / 1000);
    if (body.stream === true) {
      streamCompletion(res, { id, created, model: fakeReq.model, reply, fakeReq, body });
    } else {
      if (reply.malformed) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"id": "chatcmpl-broken", "choices": [');
        return;
      }
      const usage = reply.usage ?? defaultUsage(fakeReq, reply);
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: fakeReq.model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: reply.content ?? (reply.toolCalls?.length ? null : ""),
              refusal: null,
              ...(reply.toolCalls?.length ? { tool_calls: wireToolCalls(id, reply) } : {}),
            },
            logprobs: null,
            finish_reason: reply.toolCalls?.length ? "tool_calls" : "stop",
          },
        ],
        usage: {
          prompt_tokens: usage.input,
          completion_tokens: usage.output,
          total_tokens: usage.input + usage.output,
        },
        system_fingerprint: "fp_fake",
      });
    }
  });
  const url = `http://127.0.0.1:${http.port}/v1`;
  return {
    url,
    env: { OPENAI_BASE_URL: url, OPENAI_API_KEY: "sk-fake-test-key" },
    requests,
    close: http.close,
  };
}

function wireToolCalls(completionId: string, reply: FakeReply) {
  return (reply.toolCalls ?? []).map((c, i) => ({
    id: `call_${completionId.slice(-6)}_${i}`,
    type: "function" as const,
    function: { name: c.name, arguments: JSON.stringify(c.args) },
  }));
}

function streamCompletion(
  res: ServerResponse,
  a: {
    id: string;
    created: number;
    model: string;
    reply: FakeReply;
    fakeReq: FakeRequest;
    body: Record<string, unknown>;
  },
): void {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const send = (v: unknown) => res.write(`data: ${JSON.stringify(v)}\n\n`);
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    send({
      id: a.id,
      object: "chat.completion.chunk",
      created: a.created,
      model: a.model,
      system_fingerprint: "fp_fake",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });

  if (a.reply.malformed) {
    res.write('data: {"id": "broken", "choices": [\n\n');
    res.end();
    return;
  }
  chunk({ role: "assistant", content: "", refusal: null });
  for (const piece of chunksOf(a.reply.content ?? "")) chunk({ content: piece });
  wireToolCalls(a.id, a.reply).forEach((call, index) => {
    chunk({
      tool_calls: [
        {
          index,
          id: call.id,
          type: "function",
          function: { name: call.function.name, arguments: "" },
        },
      ],
    });
    for (const piece of chunksOf(call.function.arguments)) {
      chunk({ tool_calls: [{ index, function: { arguments: piece } }] });
    }
  });
  chunk({}, a.reply.toolCalls?.length ? "tool_calls" : "stop");
  const streamOptions = a.body.stream_options as { include_usage?: unknown } | undefined;
  if (streamOptions?.include_usage === true) {
    const usage = a.reply.usage ?? defaultUsage(a.fakeReq, a.reply);
    send({
      id: a.id,
      object: "chat.completion.chunk",
      created: a.created,
      model: a.model,
      choices: [],
      usage: {
        prompt_tokens: usage.input,
        completion_tokens: usage.output,
        total_tokens: usage.input + usage.output,
      },
    });
  }
  res.write("data: [DONE]\n\n");
  res.end();
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  code: string | null,
): void {
  sendJson(res, status, { error: { message, type, param: null, code } });
}

function errorKind(status: number): [string, string | null] {
  if (status === 404) return ["invalid_request_error", "model_not_found"];
  if (status === 401) return ["invalid_request_error", "invalid_api_key"];
  if (status === 429) return ["requests", "rate_limit_exceeded"];
  if (status >= 500) return ["server_error", null];
  return ["invalid_request_error", null];
}

function defaultErrorText(status: number, model: string): string {
  if (status === 404)
    return `The model \`${model}\` does not exist or you do not have access to it.`;
  if (status === 401) return "Incorrect API key provided.";
  if (status >= 500) return "The server had an error while processing your request.";
  return `fake error ${status}`;
}
