/**
 * One model call of a task, as the worker reports it (`task_model_called`):
 * built from the reply the model middleware got (pure), so what a call cost
 * and said is on the bus as it happens, not only summed in the result.
 */
import type { BaseMessage } from "@langchain/core/messages";
import type { PayloadInput } from "../schema/index.ts";
import { truncateText } from "../tools/truncate.ts";

/** What the middleware knows of a call; the attempt's reporter adds `attempt` and `worker`. */
export type ModelCall = Omit<PayloadInput<"task_model_called">, "attempt" | "worker">;

/** Bytes of the reply's text kept (head and tail): enough to read, small on the bus. */
export const MODEL_TEXT_LIMIT = 2048;
/** A model may ask for any name, however long and however many: both are capped. */
const MAX_TOOL_NAMES = 64;
const TOOL_NAME_LIMIT = 100;

export interface ModelCallFacts {
  call: number;
  model: string;
  duration_ms: number;
  steps_before: number;
}

/** The report of one call from its reply (an AIMessage, tool calls recovered from text included). */
export function modelCallOf(reply: BaseMessage, facts: ModelCallFacts): ModelCall {
  const ai = reply as BaseMessage & {
    tool_calls?: Array<{ name?: unknown }>;
    usage_metadata?: { input_tokens?: number; output_tokens?: number };
  };
  const finish = finishReason(reply.response_metadata);
  return {
    call: facts.call,
    model: facts.model,
    input_tokens: tokens(ai.usage_metadata?.input_tokens),
    output_tokens: tokens(ai.usage_metadata?.output_tokens),
    duration_ms: Math.max(0, Math.round(facts.duration_ms)),
    tool_calls: (ai.tool_calls ?? [])
      .slice(0, MAX_TOOL_NAMES)
      .map((c) => String(c.name ?? "").slice(0, TOOL_NAME_LIMIT)),
    text: truncateText(messageText(reply), MODEL_TEXT_LIMIT),
    ...(finish === undefined ? {} : { finish_reason: finish }),
    steps_before: facts.steps_before,
  };
}

/** OpenAI-compatible servers say `finish_reason`, Ollama `done_reason`, Anthropic `stop_reason`. */
function finishReason(meta: Record<string, unknown> | undefined): string | undefined {
  for (const key of ["finish_reason", "done_reason", "stop_reason"]) {
    const v = meta?.[key];
    if (typeof v === "string" && v.length > 0) return v.slice(0, 64);
  }
  return undefined;
}

/** A token count as reported, or 0 when the server gave none (or nonsense). */
export function tokens(n: number | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/** The text parts of a message's content. */
export function messageText(m: BaseMessage): string {
  if (typeof m.content === "string") return m.content;
  return m.content
    .map((part) => (typeof part === "object" && part && "text" in part ? String(part.text) : ""))
    .join("");
}
