/**
 * A LangChain callback handler that gives each call of a chat model its
 * OpenTelemetry span (GenAI conventions: `chat <model>`, kind CLIENT,
 * gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
 * gen_ai.response.model, gen_ai.usage.input_tokens / output_tokens), child of
 * the span active when the call starts (the task attempt, the planning).
 * createChatModel attaches it only while tracing is on. It is awaited
 * (not run in LangChain's background queue), so it sees the caller's
 * context and its span starts and ends with the call.
 */
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { AIMessage } from "@langchain/core/messages";
import type { LLMResult } from "@langchain/core/outputs";
import type { Span } from "@opentelemetry/api";
import { endModelSpan, startModelSpan } from "../telemetry/index.ts";

export class ModelCallSpans extends BaseCallbackHandler {
  name = "squad_model_call_spans";
  private readonly spans = new Map<string, Span>();
  private readonly provider: string;
  private readonly model: string;

  constructor(provider: string, model: string) {
    super({ _awaitHandler: true });
    this.provider = provider;
    this.model = model;
  }

  override handleChatModelStart(_llm: unknown, _messages: unknown, runId: string): void {
    this.spans.set(runId, startModelSpan(this.provider, this.model));
  }

  override handleLLMStart(_llm: unknown, _prompts: unknown, runId: string): void {
    if (!this.spans.has(runId)) this.spans.set(runId, startModelSpan(this.provider, this.model));
  }

  override handleLLMEnd(output: LLMResult, runId: string): void {
    const span = this.spans.get(runId);
    if (!span) return;
    this.spans.delete(runId);
    endModelSpan(span, usageOf(output));
  }

  override handleLLMError(err: Error, runId: string): void {
    const span = this.spans.get(runId);
    if (!span) return;
    this.spans.delete(runId);
    endModelSpan(span, { error: err instanceof Error ? err : new Error(String(err)) });
  }
}

/** Tokens, response model and finish reasons of a result (usage_metadata first, then llmOutput). */
export function usageOf(output: LLMResult): {
  inputTokens?: number;
  outputTokens?: number;
  responseModel?: string;
  finishReasons?: string[];
} {
  let input = 0;
  let out = 0;
  let seen = false;
  let responseModel: string | undefined;
  const reasons: string[] = [];
  for (const group of output.generations) {
    for (const g of group) {
      const message = (g as { message?: unknown }).message;
      if (!AIMessage.isInstance(message)) continue;
      const u = message.usage_metadata;
      if (u) {
        seen = true;
        input += u.input_tokens ?? 0;
        out += u.output_tokens ?? 0;
      }
      const meta = message.response_metadata as Record<string, unknown> | undefined;
      const m = meta?.model_name ?? meta?.model;
      if (typeof m === "string" && !responseModel) responseModel = m;
      const reason = meta?.finish_reason ?? meta?.done_reason;
      if (typeof reason === "string") reasons.push(reason);
    }
  }
  if (!seen) {
    const t = (
      output.llmOutput as
        { tokenUsage?: { promptTokens?: number; completionTokens?: number } } | undefined
    )?.tokenUsage;
    if (t) {
      seen = true;
      input = t.promptTokens ?? 0;
      out = t.completionTokens ?? 0;
    }
  }
  return {
    ...(seen ? { inputTokens: input, outputTokens: out } : {}),
    ...(responseModel ? { responseModel } : {}),
    ...(reasons.length ? { finishReasons: reasons } : {}),
  };
}
