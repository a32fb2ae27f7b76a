import { randomUUID } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { createMiddleware } from "langchain";
import { z } from "zod";

/**
 * Small local models often write a tool call as JSON in the text instead of
 * using the protocol's `tool_calls`:
 *
 *   {"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}
 *   {"tool": "run_shell", "args": {"command": "ls"}}
 *   ```json {"name": ..., "parameters": {...}} ```           (Llama 3)
 *   <tool_call>{"name": ..., "arguments": {...}}</tool_call>   (Qwen)
 *   {"function": {"name": ..., "arguments": "{\"path\": ...}"}}  (OpenAI shape)
 *   {"name": "run_shell", "command": "ls"}                     (flattened)
 *   [ ...several of the above... ] or {"tool_calls": [...]}
 *
 * Recovery finds every top-level JSON value in the text (so fences and tags
 * need no special case), reads those shapes, and keeps a call only when its
 * name is a known tool and its arguments are an object (checked with zod).
 * Arguments are not checked against the tool's schema here: the agent's tool
 * node does that and tells the model what was wrong.
 */
export interface RecoveredToolCall {
  name: string;
  args: Record<string, unknown>;
}

/** Longest text scanned; a model answer larger than this is not a tool call. */
const MAX_SCAN_CHARS = 200_000;

export function recoverToolCalls(
  text: string,
  knownToolNames: readonly string[],
): RecoveredToolCall[] {
  // Most answers hold no JSON at all (a final summary): nothing to build or scan.
  if (text.length > MAX_SCAN_CHARS || !/[[{]/.test(text)) return [];
  const Call = callSchema(knownToolNames);
  if (Call === undefined) return [];
  const calls: RecoveredToolCall[] = [];
  for (const value of jsonValuesIn(text)) {
    for (const candidate of candidatesOf(value, 0)) {
      const r = Call.safeParse(candidate);
      if (r.success) calls.push({ name: r.data.name, args: r.data.args });
    }
  }
  return calls;
}

/**
 * Building a zod schema costs far more than parsing with it, and a worker
 * asks with the same few tool sets all day, so the schemas are kept.
 */
const callSchemas = new Map<string, ReturnType<typeof makeCallSchema>>();
const MAX_CACHED_SCHEMAS = 64;

function callSchema(knownToolNames: readonly string[]) {
  const [first, ...rest] = knownToolNames;
  if (first === undefined) return undefined;
  const key = knownToolNames.join("\0");
  let schema = callSchemas.get(key);
  if (schema === undefined) {
    if (callSchemas.size >= MAX_CACHED_SCHEMAS) callSchemas.clear();
    schema = makeCallSchema(first, rest);
    callSchemas.set(key, schema);
  }
  return schema;
}

function makeCallSchema(first: string, rest: string[]) {
  return z.object({
    name: z.enum([first, ...rest]),
    args: z.record(z.string(), z.unknown()),
  });
}

/**
 * `createAgent` middleware: when the model answers with no `tool_calls` but
 * its text holds a recoverable call, the answer is replaced by the same
 * message with those `tool_calls`, so the agent loop runs the tool instead of
 * ending. `toolNames` defaults to the tools bound for the call.
 */
export function textToolCallMiddleware(toolNames?: readonly string[]) {
  return createMiddleware({
    name: "textToolCallMiddleware",
    wrapModelCall: async (request, handler) => {
      const response = await handler(request);
      if (!AIMessage.isInstance(response) || (response.tool_calls?.length ?? 0) > 0) {
        return response;
      }
      const names = toolNames ?? request.tools.map((t) => String((t as { name?: unknown }).name));
      const recovered = recoverToolCalls(textOf(response.content), names);
      if (recovered.length === 0) return response;
      return new AIMessage({
        id: response.id,
        name: response.name,
        content: response.content,
        additional_kwargs: response.additional_kwargs,
        // Marks the message so transcripts and benchmarks can count recoveries.
        response_metadata: {
          ...response.response_metadata,
          recovered_tool_calls: recovered.length,
        },
        usage_metadata: response.usage_metadata,
        tool_calls: recovered.map((c) => ({
          id: `call_text_${randomUUID().slice(0, 12)}`,
          name: c.name,
          args: c.args,
          type: "tool_call" as const,
        })),
      });
    },
  });
}

/** The text of a message content: a string, or the text blocks of a block list. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b) =>
      typeof b === "string"
        ? b
        : typeof b === "object" && b !== null && typeof (b as { text?: unknown }).text === "string"
          ? (b as { text: string }).text
          : "",
    )
    .join("");
}

/** Every top-level `{...}` or `[...]` in `text` that parses as JSON, in order. */
function* jsonValuesIn(text: string): Generator<unknown> {
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "{" || ch === "[") {
      const end = matchingClose(text, i);
      if (end > i) {
        const value = parseLenient(text.slice(i, end + 1));
        if (value !== undefined) {
          yield value;
          i = end + 1;
          continue;
        }
      }
    }
    i++;
  }
}

/** Index of the bracket closing the one at `start`, ignoring brackets inside JSON strings; -1 if none. */
function matchingClose(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{") stack.push("}");
    else if (ch === "[") stack.push("]");
    else if (ch === "}" || ch === "]") {
      if (stack.pop() !== ch) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

/** JSON.parse, forgiving the trailing commas small models like to leave. */
function parseLenient(s: string): unknown {
  for (const candidate of [s, s.replace(/,\s*([}\]])/g, "$1")]) {
    try {
      return JSON.parse(candidate) as unknown;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

/** The `{ name, args }` shapes a parsed JSON value may hold. */
function candidatesOf(value: unknown, depth: number): Array<{ name: unknown; args: unknown }> {
  if (depth > 3) return [];
  if (Array.isArray(value)) return value.flatMap((v) => candidatesOf(v, depth + 1));
  if (!isRecord(value)) return [];
  if (Array.isArray(value.tool_calls)) return candidatesOf(value.tool_calls, depth + 1);
  const fn = isRecord(value.function) ? value.function : undefined;
  const name =
    value.name ??
    value.tool ??
    value.tool_name ??
    value.action ??
    (typeof value.function === "string" ? value.function : fn?.name);
  if (typeof name !== "string") return [];
  const rawArgs =
    value.arguments ??
    value.args ??
    value.parameters ??
    value.input ??
    value.action_input ??
    fn?.arguments ??
    fn?.parameters ??
    flattenedArgs(value);
  return [{ name, args: typeof rawArgs === "string" ? parseLenient(rawArgs) : rawArgs }];
}

/** `{"name": "run_shell", "command": "ls"}`: the arguments written beside the name. */
function flattenedArgs(value: Record<string, unknown>): Record<string, unknown> {
  const { name: _n, tool: _t, tool_name: _tn, type: _ty, id: _id, ...rest } = value;
  return rest;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
