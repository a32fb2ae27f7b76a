import type { ServerResponse } from "node:http";

/**
 * The server side of Ollama's `POST /api/chat`, for the fake model servers of
 * the benchmarks and the chaos runs: one assistant message, streamed as
 * NDJSON (a message line, then the final line with the token counts) unless
 * the request said `stream: false`.
 */
export function writeOllamaChatReply(
  res: ServerResponse,
  reply: {
    model: string;
    message: Record<string, unknown>;
    stream: boolean;
    usage: { input: number; output: number };
  },
): void {
  const stamp = { model: reply.model, created_at: new Date().toISOString() };
  const final = {
    ...stamp,
    message: { role: "assistant", content: "" },
    done: true,
    done_reason: "stop",
    prompt_eval_count: reply.usage.input,
    eval_count: reply.usage.output,
  };
  if (!reply.stream) {
    sendJson(res, 200, { ...final, message: reply.message });
    return;
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  res.write(`${JSON.stringify({ ...stamp, message: reply.message, done: false })}\n`);
  res.end(`${JSON.stringify(final)}\n`);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(value));
}
