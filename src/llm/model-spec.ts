import { BadInputError } from "../errors.ts";

/** The model servers a spec can name. */
export const PROVIDERS = ["ollama", "openai"] as const;
export type Provider = (typeof PROVIDERS)[number];

/** `ollama:qwen2.5:7b` → `{ provider: "ollama", model: "qwen2.5:7b" }`. */
export interface ModelSpec {
  provider: Provider;
  model: string;
}

const ACCEPTED_FORMS =
  'use "ollama:<model>" (e.g. ollama:qwen2.5:7b) or "openai:<model>" (e.g. openai:gpt-4.1)';

/**
 * Parse a model spec. Everything after the first colon is the model name, so
 * Ollama tags (`qwen2.5:7b`) and OpenAI-compatible names with slashes
 * (`openai:meta-llama/Llama-3.1-8B`) survive intact.
 */
export function parseModelSpec(spec: string): ModelSpec {
  const text = spec.trim();
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new BadInputError(`invalid model spec ${JSON.stringify(spec)}: ${ACCEPTED_FORMS}`);
  }
  const provider = text.slice(0, colon).toLowerCase();
  const model = text.slice(colon + 1).trim();
  if (!isProvider(provider)) {
    throw new BadInputError(
      `invalid model spec ${JSON.stringify(spec)}: unknown provider ${JSON.stringify(provider)}; ${ACCEPTED_FORMS}`,
    );
  }
  if (model === "" || /\s/.test(model)) {
    throw new BadInputError(
      `invalid model spec ${JSON.stringify(spec)}: the model name is ${model === "" ? "empty" : "not a single word"}; ${ACCEPTED_FORMS}`,
    );
  }
  return { provider, model };
}

export function formatModelSpec(spec: ModelSpec): string {
  return `${spec.provider}:${spec.model}`;
}

function isProvider(s: string): s is Provider {
  return (PROVIDERS as readonly string[]).includes(s);
}
