import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { createAgent, createMiddleware } from "langchain";
import { errorMessage } from "../errors.ts";
import { createChatModel } from "../llm/chat-model.ts";
import { classifyModelError, ModelUnavailableError } from "../llm/errors.ts";
import { resolveModelEndpoint } from "../llm/model-endpoint.ts";
import { textToolCallMiddleware } from "../llm/text-tool-calls.ts";
import type { Step, Task, Usage } from "../schema/index.ts";
import { createSharedAgentTools, type ToolsRuntimeContext } from "../tools/agent-tools.ts";
import type { CommandGate } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { messageText, modelCallOf, tokens, type ModelCall } from "./model-call.ts";
import { taskPrompt } from "./task-prompt.ts";

export interface AgentRunInput {
  task: Task;
  workspace: string;
  persona: string;
  toolNames: string[];
  modelSpec: string;
  signal: AbortSignal;
  onStep: (step: Step) => void;
  /** Called as each model call ends (→ `task_model_called`); not for a call the budget stopped. */
  onModelCall?: (call: ModelCall) => void;
  maxModelCalls: number;
  /** Epoch ms after which shell commands get no more time. */
  deadline: number;
  env?: NodeJS.ProcessEnv;
  /** The OS sandbox and the policy/approval gate of run_shell. */
  sandbox?: ShellSandbox;
  gate?: CommandGate;
}

export interface AgentRunOutput {
  summary: string;
  usage: Usage;
  toolCalls: number;
  modelCalls: number;
  error?: string;
  /** The run was cut at `maxModelCalls` before the model said it was done. */
  limitReached: boolean;
}

/** Sent once when a small model stops without having called any tool. */
const NUDGE =
  "You have not called any tool, so nothing has been done yet. Do the task now by calling the tools " +
  "(for example write_file, then run_shell to check it). Do not describe the work; do it.";

/**
 * One ReAct run with a fresh context: persona as system prompt, the task as
 * the only human message, the contract's tools confined to the workspace.
 * A tool call written as text is recovered by middleware; a model that does
 * nothing is nudged once. The verify checks (run by the caller) decide
 * success, not this summary.
 *
 * The tools and the compiled agent graph are shared by every task with the
 * same model, persona and tool set (see `sharedAgent`); what is the task's
 * own (workspace, abort signal, shell timeout, `onStep`, sandbox, gate, model
 * client, model-call budget and usage) goes in as LangChain's runtime
 * context, which LangGraph hands to every tool call and middleware of the run.
 */
export async function runAgentTask(input: AgentRunInput): Promise<AgentRunOutput> {
  const agent = sharedAgent(input);
  const meter: ModelMeter = { calls: 0, steps: 0, limitReached: false, input: 0, output: 0 };
  const context: TaskRunContext = {
    tools: {
      workspace: input.workspace,
      signal: input.signal,
      shellTimeoutMs: Math.max(1000, input.deadline - Date.now()),
      ...(input.sandbox ? { sandbox: input.sandbox } : {}),
      ...(input.gate ? { gate: input.gate } : {}),
      onStep: (step) => {
        meter.steps++;
        input.onStep(step);
      },
    },
    model: {
      // A client per task: ChatOllama's abort of a call ends every stream of its client.
      client: createChatModel(input.modelSpec, { env: input.env, signal: input.signal }),
      spec: input.modelSpec,
      limit: input.maxModelCalls,
      meter,
      ...(input.onModelCall ? { onCall: input.onModelCall } : {}),
    },
  };
  // One model turn plus its tool step is 2 graph steps; middleware adds a few.
  const config = {
    recursionLimit: input.maxModelCalls * 3 + 10,
    signal: input.signal,
    context,
  };
  const usage = (): Usage => ({
    model: input.modelSpec,
    input_tokens: meter.input,
    output_tokens: meter.output,
  });
  const out = (summary: string, error?: string): AgentRunOutput => ({
    summary,
    usage: usage(),
    toolCalls: meter.steps,
    modelCalls: meter.calls,
    limitReached: meter.limitReached,
    ...(error === undefined ? {} : { error }),
  });

  let messages: BaseMessage[] = [new HumanMessage(taskPrompt(input.task, input.workspace))];
  try {
    let result = await agent.invoke({ messages }, config);
    if (meter.steps === 0 && !input.signal.aborted && !meter.limitReached) {
      messages = [...result.messages, new HumanMessage(NUDGE)];
      result = await agent.invoke({ messages }, config);
    }
    messages = result.messages;
  } catch (err) {
    // Aborted (timeout, cancel, drain): the caller says why.
    if (input.signal.aborted) return out("");
    const url = resolveModelEndpoint(input.modelSpec, input.env).url;
    const classified = classifyModelError(err, input.modelSpec, url);
    if (classified instanceof ModelUnavailableError) throw classified;
    return out("", `agent run failed: ${errorMessage(err)}`);
  }
  const last = [...messages].reverse().find((m) => AIMessage.isInstance(m) && !isBudgetStop(m));
  const said = last ? messageText(last).trim().slice(0, 2000) : "";
  if (meter.limitReached) {
    const cut = `stopped at the limit of ${input.maxModelCalls} model calls, after ${meter.steps} tool call(s)`;
    return out(said ? `${cut}; last words: ${said}` : cut);
  }
  return out(said || `the model finished after ${meter.steps} tool call(s)`);
}

interface ModelMeter {
  calls: number;
  /** Tool steps recorded so far (each went to `onStep`). */
  steps: number;
  limitReached: boolean;
  input: number;
  output: number;
}

/** The runtime context of one task's run (`agent.invoke(..., { context })`). */
interface TaskRunContext extends ToolsRuntimeContext {
  model: TaskModel;
}

type SharedAgent = ReturnType<typeof buildAgent>;

/** Agents kept per (model, persona, tools); a worker has a few roster entries. */
const MAX_SHARED_AGENTS = 32;
const sharedAgents = new Map<string, SharedAgent>();

/**
 * The agent for a task's model, persona and tools, built on first use and
 * then reused by every task that has the same three: the tools and the
 * createAgent graph are built once per replica, not once per task. The
 * model client is the task's own (see `taskModelMiddleware`).
 */
function sharedAgent(input: AgentRunInput): SharedAgent {
  const key = JSON.stringify([input.modelSpec, input.persona, [...input.toolNames].sort()]);
  let agent = sharedAgents.get(key);
  if (agent === undefined) {
    agent = buildAgent(input);
    if (sharedAgents.size >= MAX_SHARED_AGENTS) {
      const oldest = sharedAgents.keys().next();
      if (!oldest.done) sharedAgents.delete(oldest.value);
    }
    sharedAgents.set(key, agent);
  }
  return agent;
}

function buildAgent(input: AgentRunInput) {
  const tools = createSharedAgentTools(input.toolNames);
  return createAgent({
    // Never called: every call goes to the task's own client (taskModelMiddleware).
    model: createChatModel(input.modelSpec, { env: input.env }),
    tools,
    systemPrompt: input.persona,
    // Outermost: a call past the budget never reaches the model or the text recovery.
    middleware: [taskModelMiddleware, textToolCallMiddleware(tools.map((t) => t.name))],
  });
}

/** A task's model client, its model-call budget and its meter (mutated as calls happen). */
interface TaskModel {
  client: BaseChatModel;
  /** Its model spec, as reported with each call. */
  spec: string;
  limit: number;
  meter: ModelMeter;
  onCall?: (call: ModelCall) => void;
}

/** The task's model from a middleware's runtime context (the invoke's `context`, unparsed). */
function taskModelOf(context: unknown): TaskModel {
  const model: unknown =
    typeof context === "object" && context !== null
      ? (context as { model?: unknown }).model
      : undefined;
  if (typeof model !== "object" || model === null || !("client" in model) || !("meter" in model)) {
    throw new Error("the agent was invoked without its task's runtime context.model");
  }
  return model as TaskModel;
}

/** Marks the closing message the budget middleware puts in place of call `limit + 1`. */
const BUDGET_STOP = "task_model_budget_exhausted";

/**
 * Makes each model call with the task's own client, counts the calls and
 * their token usage as they happen (so a run cut short by a timeout still
 * reports what it spent), and ends the run instead of making call
 * `limit + 1`. Counts span the nudge run too: one budget per task, kept in
 * the task's runtime context. Each call that got a reply is reported
 * (`onCall`, → task_model_called) without waiting: the reporter queues it.
 *
 * It ends the run by answering that call itself with an empty message that
 * has no tool calls (marked `BUDGET_STOP`, left out of the summary) rather
 * than from a `beforeModel` hook: a hook is one more graph node per model
 * turn, which costs a model-bound task more CPU than anything else it does.
 */
const taskModelMiddleware = createMiddleware({
  name: "taskModel",
  wrapModelCall: async (request, handler) => {
    const { client, spec, limit, meter, onCall } = taskModelOf(request.runtime.context);
    if (meter.calls >= limit) {
      meter.limitReached = true;
      return new AIMessage({ content: "", response_metadata: { [BUDGET_STOP]: true } });
    }
    const call = ++meter.calls;
    const stepsBefore = meter.steps;
    const started = performance.now();
    const response = await handler({ ...request, model: client });
    if (AIMessage.isInstance(response)) {
      meter.input += tokens(response.usage_metadata?.input_tokens);
      meter.output += tokens(response.usage_metadata?.output_tokens);
      onCall?.(
        modelCallOf(response, {
          call,
          model: spec,
          duration_ms: performance.now() - started,
          steps_before: stepsBefore,
        }),
      );
    }
    return response;
  },
});

function isBudgetStop(m: BaseMessage): boolean {
  const meta: Record<string, unknown> = m.response_metadata;
  return meta[BUDGET_STOP] === true;
}
