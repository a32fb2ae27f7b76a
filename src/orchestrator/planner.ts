/**
 * The planner: a brief (and, on a replan, the results so far) → a validated,
 * normalized plan, written by a chat model through structured output.
 *
 * Every plan goes through `validatePlan`; an invalid one is sent back to the
 * model with the problems, at most `maxRepairs` times. Model output is read
 * from the raw message (`includeRaw: true`) and checked here, not trusted to
 * LangChain's parser: with `functionCalling` a reply without a tool call
 * parses to nothing at all, and with `includeRaw` a parse failure becomes a
 * silent null. Both become problems the model is told about.
 *
 * The schema the model sees has every field required and no defaults (what
 * OpenAI's strict structured output accepts); the answer is then mapped onto
 * the contract's Plan (empty `run`/`verify` dropped, nulls removed) and
 * normalized.
 *
 * Errors of the model call itself (server down, HTTP errors, abort) are
 * thrown as they come; the caller knows the model spec and classifies them
 * (src/llm `classifyModelError`).
 */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import { z } from "zod";
import type { Usage } from "../schema/result.ts";
import type { Brief } from "./brief.ts";
import { validatePlan } from "./plan-validation.ts";
import type { PlanOutcome } from "./explicit-plan.ts";
import {
  PLAN_TOOL_NAME,
  plannerSystemPrompt,
  plannerUserPrompt,
  repairPrompt,
  type PlannerAgent,
  type ReplanContext,
} from "./planner-prompt.ts";

export type { PlannerAgent, ReplanContext };
export { planFromBrief } from "./explicit-plan.ts";

export const DEFAULT_MAX_REPAIRS = 2;

export interface PlanMissionOptions {
  model: BaseChatModel;
  brief: Brief;
  /** The roster; only the brief's allowed agents are offered to the model. */
  agents: readonly PlannerAgent[];
  /** Extra rounds that send an invalid plan back with its problems. */
  maxRepairs?: number;
  /** For a replan: the plan that ran, every task's outcome, what failed. */
  previous?: ReplanContext;
  /** functionCalling (default: works with OpenAI, Ollama, vLLM, Anthropic's endpoint) or jsonSchema. */
  method?: "functionCalling" | "jsonSchema";
  signal?: AbortSignal;
}

export type { PlanOutcome } from "./explicit-plan.ts";

/** Ask the model for a plan, repairing invalid ones; never throws for bad model output. */
export async function planMission(opts: PlanMissionOptions): Promise<PlanOutcome> {
  const maxRepairs = opts.maxRepairs ?? DEFAULT_MAX_REPAIRS;
  const method = opts.method ?? "functionCalling";
  const usage: Usage = { model: null, input_tokens: 0, output_tokens: 0 };

  const roster = new Map(opts.agents.map((a) => [a.name, a]));
  const missing = (opts.brief.agents ?? []).filter((n) => !roster.has(n));
  if (missing.length) {
    return {
      ok: false,
      problems: missing.map((n) => `the brief names agent "${n}", which is not in the roster`),
      attempts: 0,
      usage,
    };
  }
  const agents = opts.brief.agents
    ? opts.brief.agents.map((n) => roster.get(n)!)
    : [...opts.agents];
  if (agents.length === 0) {
    return { ok: false, problems: ["no agents are available to plan with"], attempts: 0, usage };
  }
  const names = agents.map((a) => a.name);
  // On a replan, succeeded tasks count as done: the revision may depend on them.
  const completed =
    opts.previous?.results.filter((r) => r.status === "succeeded").map((r) => r.id) ?? [];

  const structured = opts.model.withStructuredOutput<Record<string, unknown>>(
    modelPlanSchema(names),
    {
      name: PLAN_TOOL_NAME,
      method,
      includeRaw: true,
    },
  );
  const messages: BaseMessage[] = [
    new SystemMessage(plannerSystemPrompt()),
    new HumanMessage(
      plannerUserPrompt({
        brief: opts.brief,
        agents,
        ...(opts.previous ? { previous: opts.previous } : {}),
      }),
    ),
  ];

  let problems: string[] = [];
  let attempts = 0;
  for (let round = 0; round <= maxRepairs; round++) {
    attempts++;
    let raw: BaseMessage | null = null;
    let answer: Answer;
    try {
      raw = (await structured.invoke(messages, opts.signal ? { signal: opts.signal } : {})).raw;
      addMessageUsage(usage, raw);
      answer = method === "jsonSchema" ? readJsonContent(raw) : readToolCall(raw);
    } catch (e) {
      // The OpenAI client parses json_schema replies itself and throws on bad JSON.
      if (!isOutputError(e)) throw e;
      answer = { ok: false, problem: `the reply is not valid JSON: ${(e as Error).message}` };
    }
    if (!answer.ok) {
      problems = [answer.problem];
    } else {
      const v = validatePlan(toPlanCandidate(answer.value), { agents: names, completed });
      if (v.ok) return { ok: true, plan: v.plan, attempts, usage };
      problems = v.problems;
    }
    const previousReply = answer.ok ? JSON.stringify(answer.value) : raw ? textOf(raw) : "";
    messages.push(
      new AIMessage(previousReply || "(no usable reply)"),
      new HumanMessage(repairPrompt(problems)),
    );
  }
  return { ok: false, problems, attempts, usage };
}

/**
 * The JSON schema the model fills in: the Plan shape with every field
 * required, no defaults, and the agent names as an enum.
 */
export function modelPlanSchema(agents: readonly string[]): Record<string, unknown> {
  const agent = agents.length ? z.enum(agents as [string, ...string[]]) : z.string();
  const task = z.object({
    id: z.string().describe("Unique in the plan: letters, digits, _ or -, e.g. t1"),
    agent: agent.describe("The agent that does the task"),
    title: z.string().describe("A few words"),
    instructions: z
      .string()
      .describe("Everything the agent needs to know; it starts with no memory"),
    depends_on: z.array(z.string()).describe("Ids of tasks that must succeed first; [] for none"),
    acceptance: z.string().describe("What is true when the task is done"),
    run: z
      .array(z.string())
      .describe("Shell commands run in order without a model; [] to let the agent work"),
    verify: z.array(z.string()).describe("Shell checks that exit 0 only when the work is right"),
  });
  const plan = z
    .object({
      strategy: z.string(),
      waves: z.array(
        z.object({
          wave: z.number().int().describe("1, 2, 3, ... in order"),
          rationale: z.string(),
          tasks: z.array(task),
        }),
      ),
      risks: z.array(z.string()),
      success_criteria: z.array(z.string()),
    })
    .describe("Submit the mission plan: waves of tasks for the agents");
  const { $schema: _ignored, ...schema } = z.toJSONSchema(plan) as Record<string, unknown>;
  return schema;
}

type Answer = { ok: true; value: unknown } | { ok: false; problem: string };

/** Errors that mean "the model's output was unusable", as opposed to "the call failed". */
function isOutputError(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return (
    name === "SyntaxError" ||
    name === "OutputParserException" ||
    name === "LengthFinishReasonError" ||
    name === "ContentFilterFinishReasonError"
  );
}

function readToolCall(raw: BaseMessage): Answer {
  const msg = raw as AIMessage;
  const call = msg.tool_calls?.find((c) => c.name === PLAN_TOOL_NAME) ?? msg.tool_calls?.[0];
  if (call) return { ok: true, value: call.args };
  const invalid = msg.invalid_tool_calls?.[0];
  if (invalid) {
    return {
      ok: false,
      problem: `the ${PLAN_TOOL_NAME} call's arguments are not valid JSON${invalid.error ? ` (${invalid.error})` : ""}`,
    };
  }
  const text = textOf(raw).trim();
  return {
    ok: false,
    problem:
      `the reply made no ${PLAN_TOOL_NAME} tool call` +
      (text
        ? `; it said: ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)}`
        : ""),
  };
}

function readJsonContent(raw: BaseMessage): Answer {
  const text = textOf(raw).trim();
  if (!text)
    return { ok: false, problem: "the reply was empty; it must be the plan as one JSON object" };
  try {
    return { ok: true, value: JSON.parse(stripFence(text)) };
  } catch (e) {
    return { ok: false, problem: `the reply is not valid JSON: ${(e as Error).message}` };
  }
}

/** Model output → a candidate for the contract's Plan. */
function toPlanCandidate(value: unknown): unknown {
  const v = dropNulls(value);
  if (!isRecord(v) || !Array.isArray(v.waves)) return v;
  return {
    ...v,
    waves: v.waves.map((w) => {
      if (!isRecord(w) || !Array.isArray(w.tasks)) return w;
      return {
        ...w,
        tasks: w.tasks.map((t) => {
          if (!isRecord(t)) return t;
          const out: Record<string, unknown> = { ...t };
          // An empty `run` would make a run-only task with nothing to run.
          for (const key of ["run", "verify"]) {
            if (Array.isArray(out[key]) && (out[key] as unknown[]).length === 0) delete out[key];
          }
          return out;
        }),
      };
    }),
  };
}

function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = dropNulls(v);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stripFence(text: string): string {
  const m = /^```(?:json)?\s*\n([\s\S]*?)\n```$/.exec(text);
  return m ? m[1]! : text;
}

function textOf(msg: BaseMessage): string {
  const c = msg.content;
  if (typeof c === "string") return c;
  return c.map((p) => (typeof p === "object" && p && "text" in p ? String(p.text) : "")).join("");
}

function addMessageUsage(usage: Usage, raw: BaseMessage): void {
  const m = raw as AIMessage;
  usage.input_tokens += m.usage_metadata?.input_tokens ?? 0;
  usage.output_tokens += m.usage_metadata?.output_tokens ?? 0;
  const name = (m.response_metadata as { model_name?: unknown } | undefined)?.model_name;
  if (typeof name === "string" && usage.model === null) usage.model = name;
}
