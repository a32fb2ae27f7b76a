import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOllama } from "@langchain/ollama";
import { ChatOpenAI } from "@langchain/openai";
import { BadInputError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { resolveModelEndpoint, type ModelEndpoint } from "./model-endpoint.ts";
import { createResilientFetch } from "./resilient-fetch.ts";
import { tracingEnabled } from "../telemetry/index.ts";
import { ModelCallSpans } from "./model-call-spans.ts";

export interface ChatModelOptions {
  /** Where OLLAMA_HOST / OPENAI_BASE_URL / OPENAI_API_KEY are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Unset = the server's default. */
  temperature?: number;
  /** Ollama context window in tokens (Ollama's own default is small and truncates silently). */
  numCtx?: number;
  /**
   * OpenAI: whole-request timeout. Ollama: longest silence (before the
   * headers, or between two streamed chunks), so a long steady generation is
   * not cut but a server that stops answering is.
   */
  timeoutMs?: number;
  /** Retries on connection errors and 5xx (not on 4xx). */
  maxRetries?: number;
  /** Retries are logged here (Ollama; ChatOpenAI retries internally). */
  logger?: Logger;
  /**
   * Ollama: cancels every HTTP request of this client when it fires (a task's
   * abort signal; give each task its own client then). ChatOllama rejects an
   * aborted call on time but leaves its request running; this ends it.
   * ChatOpenAI passes each call's signal to its request itself.
   */
  signal?: AbortSignal;
}

export const DEFAULT_NUM_CTX = 8192;
export const DEFAULT_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_RETRIES = 2;
/** Sent when a local OpenAI-compatible server needs no key but the SDK insists on one. */
export const PLACEHOLDER_API_KEY = "sk-local-no-key";

/**
 * A LangChain chat model for a spec (`ollama:qwen2.5:7b`, `openai:gpt-4.1`),
 * usable by `createAgent` (tool binding) and `withStructuredOutput`.
 *
 * Errors from calls are the clients' own; pass them through
 * `classifyModelError(err, endpoint.spec, endpoint.url)` (see
 * `resolveModelEndpoint`) to get a `ModelUnavailableError` when the server is
 * down or does not have the model.
 *
 * With tracing on (OTEL_*), every call of the model is a GenAI span
 * (model-call-spans.ts).
 *
 * Never sets `streaming: true`: with `.invoke()` ChatOpenAI would then try to
 * download a tokenizer to estimate usage, and hang offline. (ChatOllama
 * streams on the wire regardless; that is its protocol, not this flag.)
 */
export function createChatModel(spec: string, opts: ChatModelOptions = {}): BaseChatModel {
  const endpoint = resolveModelEndpoint(spec, opts.env ?? process.env);
  return endpoint.provider === "ollama"
    ? createOllamaModel(endpoint, opts)
    : createOpenAIModel(endpoint, opts);
}

function createOllamaModel(endpoint: ModelEndpoint, opts: ChatModelOptions): ChatOllama {
  return new ChatOllama({
    ...modelCallSpans(endpoint),
    model: endpoint.model,
    baseUrl: endpoint.url,
    numCtx: opts.numCtx ?? DEFAULT_NUM_CTX,
    temperature: opts.temperature,
    // ChatOllama ignores maxRetries; retries and the silence timeout live in the transport.
    fetch: createResilientFetch({
      maxRetries: opts.maxRetries ?? DEFAULT_MAX_RETRIES,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      logger: opts.logger,
      ...(opts.signal ? { signal: opts.signal } : {}),
    }),
  });
}

function createOpenAIModel(endpoint: ModelEndpoint, opts: ChatModelOptions): ChatOpenAI {
  const env = opts.env ?? process.env;
  const customBase = (env.OPENAI_BASE_URL ?? "").trim() !== "";
  const apiKey = env.OPENAI_API_KEY?.trim() || (customBase ? PLACEHOLDER_API_KEY : undefined);
  if (apiKey === undefined) {
    throw new BadInputError(
      `model ${endpoint.spec} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server)`,
    );
  }
  return new ChatOpenAI({
    ...modelCallSpans(endpoint),
    model: endpoint.model,
    apiKey,
    // Always explicit, so the client never falls back to process.env or a gateway.
    configuration: { baseURL: endpoint.url },
    temperature: opts.temperature,
    maxRetries: opts.maxRetries ?? DEFAULT_MAX_RETRIES,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
}

/** The span handler while tracing is on; nothing otherwise. */
function modelCallSpans(endpoint: ModelEndpoint): { callbacks?: ModelCallSpans[] } {
  return tracingEnabled()
    ? { callbacks: [new ModelCallSpans(endpoint.provider, endpoint.model)] }
    : {};
}
