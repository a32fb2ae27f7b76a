import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { Usage } from "../schema/result.ts";

/**
 * Token usage of a run: the sum of `usage_metadata` over the AI messages in
 * `messages` (what `createAgent(...).invoke` returns). Messages that came in
 * as input carry no usage, so passing the whole transcript is fine. `model`
 * is the spec recorded in the result (null for a run with no model).
 */
export function sumUsage(messages: readonly BaseMessage[], model: string | null): Usage {
  let input = 0;
  let output = 0;
  for (const m of messages) {
    if (!AIMessage.isInstance(m)) continue;
    input += tokens(m.usage_metadata?.input_tokens);
    output += tokens(m.usage_metadata?.output_tokens);
  }
  return { model, input_tokens: input, output_tokens: output };
}

/** Add two usages (e.g. several model calls of one task); the first one's model wins. */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    model: a.model ?? b.model,
    input_tokens: a.input_tokens + b.input_tokens,
    output_tokens: a.output_tokens + b.output_tokens,
  };
}

function tokens(n: number | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
