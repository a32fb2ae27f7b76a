import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { createAgent, createMiddleware } from "langchain";
import { errorMessage } from "../errors.ts";
import { createChatModel } from "../llm/chat-model.ts";
import { classifyModelError, ModelUnavailableError } from "../llm/errors.ts";
import { resolveModelEndpoint } from "../llm/model-endpoint.ts";
import { textToolCallMiddleware } from "../llm/text-tool-calls.ts";
import type { Step, Task, Usage } from "../schema/index.ts";
import { createAgentTools } from "../tools/agent-tools.ts";
import type { CommandGate } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { taskPrompt } from "./task-prompt.ts";

export interface AgentRunInput {
  task: Task;
  workspace: string;
  persona: string;
  toolNames: string[];
  modelSpec: string;
  signal: AbortSignal;
  onStep: (step: Step) => void;
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
 */
export async function runAgentTask(input: AgentRunInput): Promise<AgentRunOutput> {
  const model = createChatModel(input.modelSpec, { env: input.env });
  let toolCalls = 0;
  const tools = createAgentTools({
    workspace: input.workspace,
    allowed: input.toolNames,
    signal: input.signal,
    shellTimeoutMs: Math.max(1000, input.deadline - Date.now()),
    ...(input.sandbox ? { sandbox: input.sandbox } : {}),
    ...(input.gate ? { gate: input.gate } : {}),
    onStep: (step) => {
      toolCalls++;
      input.onStep(step);
    },
  });
  const meter: ModelMeter = { calls: 0, limitReached: false, input: 0, output: 0 };
  const agent = createAgent({
    model,
    tools,
    systemPrompt: input.persona,
    middleware: [
      textToolCallMiddleware(tools.map((t) => t.name)),
      modelBudgetMiddleware(input.maxModelCalls, meter),
    ],
  });
  // One model turn plus its tool step is 2 graph steps; middleware adds a few.
  const recursionLimit = input.maxModelCalls * 3 + 10;
  const usage = (): Usage => ({
    model: input.modelSpec,
    input_tokens: meter.input,
    output_tokens: meter.output,
  });
  const out = (summary: string, error?: string): AgentRunOutput => ({
    summary,
    usage: usage(),
    toolCalls,
    modelCalls: meter.calls,
    limitReached: meter.limitReached,
    ...(error === undefined ? {} : { error }),
  });

  let messages: BaseMessage[] = [new HumanMessage(taskPrompt(input.task, input.workspace))];
  try {
    let result = await agent.invoke({ messages }, { recursionLimit, signal: input.signal });
    if (toolCalls === 0 && !input.signal.aborted && !meter.limitReached) {
      messages = [...result.messages, new HumanMessage(NUDGE)];
      result = await agent.invoke({ messages }, { recursionLimit, signal: input.signal });
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
  const last = [...messages].reverse().find((m) => AIMessage.isInstance(m));
  const said = last ? messageText(last).trim().slice(0, 2000) : "";
  if (meter.limitReached) {
    const cut = `stopped at the limit of ${input.maxModelCalls} model calls, after ${toolCalls} tool call(s)`;
    return out(said ? `${cut}; last words: ${said}` : cut);
  }
  return out(said || `the model finished after ${toolCalls} tool call(s)`);
}

interface ModelMeter {
  calls: number;
  limitReached: boolean;
  input: number;
  output: number;
}

/**
 * Counts model calls and their token usage as they happen (so a run cut
 * short by a timeout still reports what it spent), and ends the run before
 * call `limit + 1`. Counts span the nudge run too: one budget per task.
 */
function modelBudgetMiddleware(limit: number, meter: ModelMeter) {
  return createMiddleware({
    name: "taskModelBudget",
    beforeModel: {
      canJumpTo: ["end"],
      hook: () => {
        if (meter.calls < limit) return undefined;
        meter.limitReached = true;
        return { jumpTo: "end" };
      },
    },
    wrapModelCall: async (request, handler) => {
      meter.calls++;
      const response = await handler(request);
      if (AIMessage.isInstance(response)) {
        meter.input += tokens(response.usage_metadata?.input_tokens);
        meter.output += tokens(response.usage_metadata?.output_tokens);
      }
      return response;
    },
  });
}

function tokens(n: number | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

function messageText(m: BaseMessage): string {
  if (typeof m.content === "string") return m.content;
  return m.content
    .map((part) => (typeof part === "object" && part && "text" in part ? String(part.text) : ""))
    .join("");
}
