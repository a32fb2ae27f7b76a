import { BadInputError } from "../errors.ts";
import { parseModelSpec, type ModelSpec } from "./model-spec.ts";

export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";
export const DEFAULT_OPENAI_URL = "https://api.openai.com/v1";

/** Where a model spec is served: what error messages name and what the client dials. */
export interface ModelEndpoint extends ModelSpec {
  /** The spec as given, e.g. `ollama:qwen2.5:7b`. */
  spec: string;
  /** Base URL of the server: Ollama's root, or the OpenAI-compatible `/v1` base. */
  url: string;
}

/** Resolve a spec against the environment (`OLLAMA_HOST`, `OPENAI_BASE_URL`). */
export function resolveModelEndpoint(
  spec: string,
  env: NodeJS.ProcessEnv = process.env,
): ModelEndpoint {
  const parsed = parseModelSpec(spec);
  const url =
    parsed.provider === "ollama"
      ? normalizeOllamaHost(env.OLLAMA_HOST)
      : normalizeOpenAIBaseUrl(env.OPENAI_BASE_URL);
  return { ...parsed, spec: spec.trim(), url };
}

/**
 * `OLLAMA_HOST` the way Ollama's own CLI reads it: `host:port`, `host`,
 * `:port` and `http(s)://host[:port]` are all accepted; without a scheme it is
 * http, and without a port it is 11434 (80/443 when a scheme is given).
 */
export function normalizeOllamaHost(value: string | undefined): string {
  const raw = (value ?? "").trim();
  if (raw === "") return DEFAULT_OLLAMA_URL;
  const hasScheme = raw.includes("://");
  const withScheme = hasScheme ? raw : `http://${raw.startsWith(":") ? `127.0.0.1${raw}` : raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new BadInputError(
      `invalid OLLAMA_HOST ${JSON.stringify(value)}: use host:port or http://host:port (e.g. 127.0.0.1:11434)`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BadInputError(
      `invalid OLLAMA_HOST ${JSON.stringify(value)}: scheme must be http or https`,
    );
  }
  // WHATWG URL drops a port equal to the scheme default, so only add ours when none was written.
  if (!hasScheme && url.port === "" && !/:\d+$/.test(raw)) url.port = "11434";
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.protocol}//${url.host}${path}`;
}

export function normalizeOpenAIBaseUrl(value: string | undefined): string {
  const raw = (value ?? "").trim();
  if (raw === "") return DEFAULT_OPENAI_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BadInputError(
      `invalid OPENAI_BASE_URL ${JSON.stringify(value)}: use a full URL such as http://127.0.0.1:8000/v1`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BadInputError(
      `invalid OPENAI_BASE_URL ${JSON.stringify(value)}: scheme must be http or https`,
    );
  }
  return raw.replace(/\/+$/, "");
}
