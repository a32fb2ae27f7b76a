import { InfrastructureError } from "../errors.ts";
import { resolveModelEndpoint } from "./model-endpoint.ts";
import { parseModelSpec } from "./model-spec.ts";

/** Why a model could not be used; each has its own hint. */
export type ModelUnavailableReason =
  "unreachable" | "timeout" | "model_not_found" | "unauthorized" | "server_error";

/**
 * The model server is down, does not serve the model, refuses our key or
 * keeps failing: nothing a retry of the task on the same machine will fix
 * soon. Exit code 3. The message names the spec and the server URL.
 */
export class ModelUnavailableError extends InfrastructureError {
  readonly spec: string;
  readonly url: string;
  readonly reason: ModelUnavailableReason;
  readonly status: number | undefined;

  constructor(args: {
    spec: string;
    url: string;
    reason: ModelUnavailableReason;
    detail: string;
    status?: number;
    cause?: unknown;
  }) {
    super(
      `model ${args.spec} is unavailable at ${args.url}: ${args.detail}`,
      hintFor(args.spec, args.url, args.reason),
      { cause: args.cause },
    );
    // InfrastructureError types `name` as its own literal, so it is set at runtime only.
    Object.defineProperty(this, "name", { value: "ModelUnavailableError", enumerable: false });
    this.spec = args.spec;
    this.url = args.url;
    this.reason = args.reason;
    this.status = args.status;
  }
}

/** Node/undici/OpenAI-SDK codes and names that mean "could not talk to the server at all". */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const CONNECTION_NAMES = new Set(["APIConnectionError"]);
const TIMEOUT_NAMES = new Set(["TimeoutError", "APIConnectionTimeoutError"]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/**
 * Turn an error thrown by a chat model call (directly, through
 * `withStructuredOutput`, or out of `createAgent(...).invoke`) into a
 * `ModelUnavailableError` when it means the server or model is not usable;
 * any other error (a bad request, a parse error, an abort) is returned as is.
 * `url` defaults to where `spec` resolves with process.env; pass
 * `resolveModelEndpoint(spec, env).url` when the model was made with another env.
 */
export function classifyModelError(err: unknown, spec: string, url?: string): Error {
  if (err instanceof ModelUnavailableError) return err;
  return classify(err, spec, url ?? urlFor(spec));
}

function urlFor(spec: string): string {
  try {
    return resolveModelEndpoint(spec).url;
  } catch {
    return "(unknown server)";
  }
}

function classify(err: unknown, spec: string, url: string): Error {
  const chain = causeChain(err);
  const top = err instanceof Error ? err : new Error(String(err));
  if (chain.some(isAbort)) return top;

  const status = chain.map(statusOf).find((s) => s !== undefined);
  if (status === 404) {
    return new ModelUnavailableError({
      spec,
      url,
      reason: "model_not_found",
      status,
      detail: `the server has no such model (404: ${firstMessage(chain)})`,
      cause: err,
    });
  }
  if (status === 401 || status === 403) {
    return new ModelUnavailableError({
      spec,
      url,
      reason: "unauthorized",
      status,
      detail: `the server refused the credentials (${status}: ${firstMessage(chain)})`,
      cause: err,
    });
  }
  if (status !== undefined && status >= 500) {
    return new ModelUnavailableError({
      spec,
      url,
      reason: "server_error",
      status,
      detail: `the server keeps failing (${status}: ${firstMessage(chain)})`,
      cause: err,
    });
  }
  const timeout = chain.find((e) => TIMEOUT_NAMES.has(nameOf(e)) || TIMEOUT_CODES.has(codeOf(e)));
  if (timeout) {
    return new ModelUnavailableError({
      spec,
      url,
      reason: "timeout",
      detail: `no answer in time (${messageOf(timeout).split("\n")[0]})`,
      cause: err,
    });
  }
  const connection = chain.find(
    (e) =>
      CONNECTION_CODES.has(codeOf(e)) ||
      CONNECTION_NAMES.has(nameOf(e)) ||
      (e instanceof TypeError && e.message === "fetch failed"),
  );
  if (connection) {
    const code = chain.map(codeOf).find((c) => CONNECTION_CODES.has(c));
    return new ModelUnavailableError({
      spec,
      url,
      reason: "unreachable",
      detail: `cannot connect${code ? ` (${code})` : ""}`,
      cause: err,
    });
  }
  return top;
}

function hintFor(spec: string, url: string, reason: ModelUnavailableReason): string {
  const provider = safeProvider(spec);
  const model = spec.slice(spec.indexOf(":") + 1);
  switch (reason) {
    case "timeout":
      return `the server at ${url} took the request but did not answer in time: check its load, use a smaller model, or raise the timeout`;
    case "unreachable":
      return provider === "ollama"
        ? `start Ollama (\`ollama serve\`) or point OLLAMA_HOST at a running server (now ${url})`
        : `check that the server at ${url} is running, or set OPENAI_BASE_URL`;
    case "model_not_found":
      return provider === "ollama"
        ? `pull it first: \`ollama pull ${model}\``
        : `check the model name (the server lists its models at ${url}/models) and that OPENAI_BASE_URL ends with the API base, usually /v1`;
    case "unauthorized":
      return "check OPENAI_API_KEY";
    case "server_error":
      return `look at the model server's log at ${url}`;
  }
}

function safeProvider(spec: string): string | undefined {
  try {
    return parseModelSpec(spec).provider;
  } catch {
    return undefined;
  }
}

/** The error and its `cause`s (LangChain and the OpenAI SDK wrap the network error). */
function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  while (cur !== undefined && cur !== null && out.length < 8 && !out.includes(cur)) {
    out.push(cur);
    cur = typeof cur === "object" ? (cur as { cause?: unknown }).cause : undefined;
  }
  return out;
}

function isAbort(e: unknown): boolean {
  return nameOf(e) === "AbortError" || nameOf(e) === "APIUserAbortError";
}

function statusOf(e: unknown): number | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const o = e as {
    status?: unknown;
    status_code?: unknown;
    statusCode?: unknown;
    response?: { status?: unknown };
  };
  for (const v of [o.status, o.status_code, o.statusCode, o.response?.status]) {
    if (typeof v === "number" && v >= 100 && v < 600) return v;
  }
  return undefined;
}

function nameOf(e: unknown): string {
  return typeof e === "object" && e !== null && typeof (e as { name?: unknown }).name === "string"
    ? (e as { name: string }).name
    : "";
}

function codeOf(e: unknown): string {
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string"
    ? (e as { code: string }).code
    : "";
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The first non-empty message of the chain, first line only (LangChain appends a troubleshooting URL). */
function firstMessage(chain: unknown[]): string {
  const m = chain.map(messageOf).find((s) => s.trim() !== "");
  return ((m ?? "no detail").trim().split("\n")[0] ?? "").slice(0, 300);
}
