import { tool, type StructuredToolInterface } from "@langchain/core/tools";
import { z } from "zod";
import type { Step } from "../schema/result.ts";
import { notRunText, type CommandGate } from "./command-policy.ts";
import { listFiles, readFile, searchFiles, writeFile } from "./files.ts";
import type { ShellSandbox } from "./sandbox.ts";
import { describeShellEnd, runShell } from "./shell.ts";
import { ToolInputError } from "./tool-input-error.ts";
import { truncateText } from "./truncate.ts";
import { toolSpan } from "../telemetry/index.ts";

import { TOOL_NAMES, isToolName, type ToolName } from "./tool-names.ts";

export { TOOL_NAMES, isToolName, type ToolName };

/** What a tool call needs of its task: given per call, so one tool set can serve many tasks. */
export interface TaskToolsContext {
  /** The mission workspace; every path is relative to it. */
  workspace: string;
  /** The task's abort signal; aborting kills a running command. */
  signal?: AbortSignal;
  /** Longest a command may run; a model's `timeout_s` can only shorten it. */
  shellTimeoutMs: number;
  /** Called once per tool call, failures included. */
  onStep: (step: Step) => void;
  /** Extra environment for commands, on top of the shell allow-list. */
  env?: Record<string, string>;
  /** The OS sandbox commands run in (absent: none). */
  sandbox?: ShellSandbox;
  /** Asked before every command: the agent's policy and approvals (absent: everything runs). */
  gate?: CommandGate;
}

export interface AgentToolsContext extends TaskToolsContext {
  /** The roster entry's tools; only these are made. */
  allowed: readonly string[];
}

/**
 * The part of LangChain's runtime context (`agent.invoke(input, { context })`)
 * the shared tools read: LangGraph hands the invoke's `context` to every tool
 * call in its config.
 */
export interface ToolsRuntimeContext {
  tools: TaskToolsContext;
}

/** What the model sees of a command's output (its context is small). */
export const MODEL_OUTPUT_BYTES = 8 * 1024;
/** What a Step keeps of a tool's output. */
export const STEP_OUTPUT_BYTES = 4 * 1024;
/** What a Step keeps of one string argument (write_file's content can be 1 MiB). */
const STEP_ARG_CHARS = 1024;

const RunShellArgs = z.object({
  command: z.string().min(1).describe("The bash command line to run in the workspace."),
  timeout_s: z.coerce
    .number()
    .positive()
    .nullish()
    .describe("Optional: give up and kill the command after this many seconds."),
});
const ReadFileArgs = z.object({
  path: z.string().min(1).describe("File path relative to the workspace, e.g. 'src/index.ts'."),
});
const WriteFileArgs = z.object({
  path: z.string().min(1).describe("File path relative to the workspace, e.g. 'src/index.ts'."),
  content: z.string().describe("The complete new content of the file."),
});
const ListFilesArgs = z.object({
  path: z
    .string()
    .nullish()
    .describe("Directory relative to the workspace; omit for the whole workspace."),
});
const SearchFilesArgs = z.object({
  pattern: z
    .string()
    .min(1)
    .describe(
      "A regular expression (RE2 syntax: like JavaScript's, without lookaround or backreferences), or plain text.",
    ),
  path: z
    .string()
    .nullish()
    .describe("Directory or file relative to the workspace; omit for the whole workspace."),
});

/** What a tool body returns: the text for the model, and the Step fields it decides. */
interface Outcome {
  text: string;
  ok: boolean;
  exit_code?: number | null;
  /** The Step's output when it should differ from `text`. */
  stepOutput?: string;
  /** Recorded with the call's arguments (e.g. the approval that let a command run). */
  extraArgs?: Record<string, unknown>;
}

/**
 * The LangChain tools an agent may call, named and shaped exactly as the
 * contract says, confined to the workspace. Each call is recorded as a Step
 * through `onStep`. A refused or failed call is an `ERROR: ...` text for the
 * model (and a Step with ok:false), never an exception that ends the run.
 */
export function createAgentTools(ctx: AgentToolsContext): StructuredToolInterface[] {
  return buildTools(ctx.allowed, () => ctx);
}

/**
 * The same tools, built once and shared by every task of a replica: each
 * call takes its task's workspace, abort signal, timeout, `onStep`, sandbox
 * and gate from the run's LangChain runtime context (`{ context: { tools } }`
 * given to `agent.invoke`; see `ToolsRuntimeContext`), so building a task's
 * agent costs nothing and concurrent tasks never see each other's context.
 */
export function createSharedAgentTools(allowed: readonly string[]): StructuredToolInterface[] {
  return buildTools(allowed, taskToolsOf);
}

/** The task's part of a tool call's config; a call without one is a wiring bug. */
export function taskToolsOf(config: unknown): TaskToolsContext {
  const context: unknown =
    typeof config === "object" && config !== null
      ? (config as { context?: unknown }).context
      : undefined;
  const tools: unknown =
    typeof context === "object" && context !== null
      ? (context as { tools?: unknown }).tools
      : undefined;
  if (
    typeof tools !== "object" ||
    tools === null ||
    typeof (tools as { workspace?: unknown }).workspace !== "string" ||
    typeof (tools as { onStep?: unknown }).onStep !== "function"
  ) {
    throw new Error("a shared agent tool was called without its task's runtime context.tools");
  }
  return tools as TaskToolsContext;
}

function buildTools(
  allowed: readonly string[],
  contextOf: (config: unknown) => TaskToolsContext,
): StructuredToolInterface[] {
  const unknown = allowed.filter((n) => !isToolName(n));
  if (unknown.length > 0) {
    throw new Error(`unknown tool name(s) ${unknown.join(", ")}; known: ${TOOL_NAMES.join(", ")}`);
  }

  /** Runs a body, times it, records the Step, and turns errors into text for the model. */
  const recorded = async (
    ctx: TaskToolsContext,
    name: ToolName,
    args: Record<string, unknown>,
    body: () => Promise<Outcome>,
  ): Promise<string> => {
    const started = performance.now();
    // One span per call (GenAI execute_tool), a child of the attempt's.
    const outcome = await toolSpan(name, async (): Promise<Outcome> => {
      try {
        return await body();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const expected = err instanceof ToolInputError;
        return { text: `ERROR: ${expected ? message : `${name} failed: ${message}`}`, ok: false };
      }
    });
    ctx.onStep({
      tool: name,
      args: stepArgs({ ...args, ...outcome.extraArgs }),
      ok: outcome.ok,
      ...(outcome.exit_code !== undefined ? { exit_code: outcome.exit_code } : {}),
      duration_ms: Math.round(performance.now() - started),
      output: truncateText(outcome.stepOutput ?? outcome.text, STEP_OUTPUT_BYTES),
    });
    return outcome.text;
  };

  const all: Record<ToolName, () => StructuredToolInterface> = {
    run_shell: () =>
      tool(
        (args, config) => {
          const ctx = contextOf(config);
          return recorded(ctx, "run_shell", args, async () => {
            const timeoutMs =
              args.timeout_s != null
                ? Math.min(ctx.shellTimeoutMs, Math.round(args.timeout_s * 1000))
                : ctx.shellTimeoutMs;
            const signal = anySignal(ctx.signal, config?.signal);
            const admitted = ctx.gate ? await ctx.gate.admit(args.command, signal) : null;
            if (admitted && !admitted.run) {
              return {
                text:
                  `ERROR: the command was not run: ${admitted.reason}. ` +
                  "Do the work another way, or finish and say what you could not do.",
                ok: false,
                exit_code: null,
                stepOutput: notRunText(admitted),
                ...(admitted.approval ? { extraArgs: { approval_id: admitted.approval.id } } : {}),
              };
            }
            const r = await runShell({
              command: args.command,
              cwd: ctx.workspace,
              timeoutMs,
              signal,
              env: ctx.env,
              maxOutputBytes: MODEL_OUTPUT_BYTES,
              ...(ctx.sandbox ? { sandbox: ctx.sandbox } : {}),
            });
            const end = describeShellEnd(r, timeoutMs);
            return {
              text: `${end}\n${r.output === "" ? "(no output)" : r.output}`,
              ok: r.exit_code === 0 && !r.timed_out && !r.aborted && !r.limit,
              exit_code: r.exit_code,
              stepOutput: r.timed_out || r.aborted || r.limit ? `${end}\n${r.output}` : r.output,
              ...(admitted?.approval ? { extraArgs: { approval_id: admitted.approval.id } } : {}),
            };
          });
        },
        {
          name: "run_shell",
          description:
            "Run a bash command in the workspace and get its exit code and output (stdout and stderr). " +
            "Use it to build, test, install, inspect and check your work. Commands do not read stdin, and " +
            "background processes are stopped when the command ends, so start and use a server in one command.",
          schema: RunShellArgs,
        },
      ),
    read_file: () =>
      tool(
        (args, config) => {
          const ctx = contextOf(config);
          return recorded(ctx, "read_file", args, async () => {
            const text = await readFile(ctx.workspace, args.path);
            return { text: text === "" ? "(empty file)" : text, ok: true };
          });
        },
        {
          name: "read_file",
          description: "Read a text file of the workspace (up to 256 KiB).",
          schema: ReadFileArgs,
        },
      ),
    write_file: () =>
      tool(
        (args, config) => {
          const ctx = contextOf(config);
          return recorded(ctx, "write_file", args, async () => {
            const w = await writeFile(ctx.workspace, args.path, args.content);
            return { text: `wrote ${w.bytes} bytes to ${w.path}`, ok: true };
          });
        },
        {
          name: "write_file",
          description:
            "Create or replace a file in the workspace with the given content (parent directories are created). " +
            "Write the whole file, not a diff.",
          schema: WriteFileArgs,
        },
      ),
    list_files: () =>
      tool(
        (args, config) => {
          const ctx = contextOf(config);
          return recorded(ctx, "list_files", args, async () => {
            const r = await listFiles(ctx.workspace, args.path ?? ".");
            const body = r.entries.length === 0 ? "(empty)" : r.entries.join("\n");
            return {
              text: r.truncated
                ? `${body}\n[... more entries not shown: list a subdirectory]`
                : body,
              ok: true,
            };
          });
        },
        {
          name: "list_files",
          description:
            "List files and directories of the workspace recursively (directories end with /; " +
            "node_modules and .git are not entered).",
          schema: ListFilesArgs,
        },
      ),
    search_files: () =>
      tool(
        (args, config) => {
          const ctx = contextOf(config);
          return recorded(ctx, "search_files", args, async () => {
            const r = await searchFiles(ctx.workspace, args.pattern, args.path ?? ".");
            if (r.matches.length === 0) return { text: `no matches for ${args.pattern}`, ok: true };
            const body = r.matches.join("\n");
            return {
              text: r.truncated
                ? `${body}\n[... more matches not shown: narrow the pattern or path]`
                : body,
              ok: true,
            };
          });
        },
        {
          name: "search_files",
          description:
            "Search the workspace's text files for lines matching a pattern; answers `file:line: text` lines.",
          schema: SearchFilesArgs,
        },
      ),
  };

  return TOOL_NAMES.filter((n) => allowed.includes(n)).map((n) => all[n]());
}

/** Arguments as recorded in a Step: long strings cut so one event stays small. */
function stepArgs(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null) continue;
    out[k] =
      typeof v === "string" && v.length > STEP_ARG_CHARS
        ? `${v.slice(0, STEP_ARG_CHARS)}[... ${v.length - STEP_ARG_CHARS} more chars]`
        : v;
  }
  return out;
}

function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
