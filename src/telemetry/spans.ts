/**
 * The spans of a mission's work: a task attempt (in the worker that runs
 * it), each tool call and each `run`/`verify` command in it, each model call
 * (GenAI conventions), and the publish of each event. Every helper is a
 * no-op after one check when tracing is off.
 */
import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import {
  ERROR_TYPE,
  GEN_AI,
  MESSAGING,
  PROCESS_COMMAND_LINE,
  PROCESS_EXIT_CODE,
  SQUAD,
} from "./attributes.ts";
import { missionContext } from "./mission-trace.ts";
import { injectSpanContext, type HeaderWriter } from "./trace-context.ts";
import { tracer, tracingEnabled } from "./tracing.ts";

/** A span that records nothing (tracing off). */
const NOOP_SPAN: Span = trace.wrapSpanContext({
  traceId: "00000000000000000000000000000000",
  spanId: "0000000000000000",
  traceFlags: 0,
});

/** What an attempt span needs of a task (a task_assigned's task and mission). */
export interface AttemptSubject {
  mission_id: string;
  task: { id: string; agent: string; title?: string; wave?: number; attempt: number };
}

/**
 * Opens the span of one task attempt, child of `parent` (the task_assigned
 * message's context, `contextOf(msg)`), or of the mission's root when the
 * message carried none. Returns the span and its context: the attempt's
 * reports are published with it, and its work runs in it
 * (`context.with(ctx, ...)`), so its tool and model spans are children.
 */
export function startAttemptSpan(
  subject: AttemptSubject,
  parent: Context = ROOT_CONTEXT,
  extra: Attributes = {},
): { span: Span; context: Context } {
  if (!tracingEnabled()) return { span: NOOP_SPAN, context: ROOT_CONTEXT };
  const t = subject.task;
  const base = trace.getSpan(parent) ? parent : missionContext(subject.mission_id);
  const span = tracer().startSpan(
    `task ${t.id} attempt ${t.attempt}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        [SQUAD.missionId]: subject.mission_id,
        [SQUAD.taskId]: t.id,
        [SQUAD.attempt]: t.attempt,
        [SQUAD.agent]: t.agent,
        [GEN_AI.agentName]: t.agent,
        ...(t.title ? { [SQUAD.taskTitle]: t.title } : {}),
        ...(t.wave !== undefined ? { [SQUAD.wave]: t.wave } : {}),
        ...extra,
      },
    },
    base,
  );
  return { span, context: trace.setSpan(base, span) };
}

/** Marks an attempt span with its outcome (failed attempts are errors) and ends it. */
export function endAttemptSpan(
  span: Span,
  outcome: "succeeded" | "failed" | "abandoned",
  error?: string,
): void {
  span.setAttribute(SQUAD.outcome, outcome);
  if (outcome !== "succeeded") {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      ...(error ? { message: error.slice(0, 500) } : {}),
    });
  }
  span.end();
}

/**
 * Records the outcome of an attempt on its span (called when the worker
 * publishes task_completed or task_failed with the attempt's context, or
 * from inside the attempt).
 */
export function noteAttemptOutcome(
  outcome: "succeeded" | "failed",
  error?: string,
  ctx: Context = context.active(),
): void {
  if (!tracingEnabled()) return;
  const span = trace.getSpan(ctx);
  if (!span) return;
  span.setAttribute(SQUAD.outcome, outcome);
  if (outcome === "failed") {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      ...(error ? { message: error.slice(0, 500) } : {}),
    });
  }
}

/** Runs `fn` in a child span of the active one; a throw marks it as an error and is rethrown. */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!tracingEnabled()) return fn(NOOP_SPAN);
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      span.setAttribute(ERROR_TYPE, (err as Error).name || "Error");
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Runs `fn` in a span that is a child of the mission's root (wherever that
 * runs), e.g. the orchestrator's planning and replanning, so the planner's
 * model-call spans land in the mission's trace.
 */
export function inMissionSpan<T>(
  missionId: string,
  name: string,
  fn: (span: Span) => Promise<T>,
  attributes: Attributes = {},
): Promise<T> {
  if (!tracingEnabled()) return fn(NOOP_SPAN);
  return context.with(missionContext(missionId), () =>
    inSpan(name, { [SQUAD.missionId]: missionId, ...attributes }, fn),
  );
}

/**
 * A tool call of an agent (GenAI `execute_tool`): `fn` returns whether the
 * call succeeded; a failed one is an error span.
 */
export function toolSpan<T extends { ok: boolean }>(
  toolName: string,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return fn(NOOP_SPAN);
  return inSpan(
    `execute_tool ${toolName}`,
    {
      [GEN_AI.operationName]: "execute_tool",
      [GEN_AI.toolName]: toolName,
      [GEN_AI.toolType]: "function",
    },
    async (span) => {
      const r = await fn(span);
      if (!r.ok) span.setStatus({ code: SpanStatusCode.ERROR });
      return r;
    },
  );
}

/** What a model-call span records at its end. */
export interface ModelCallEnd {
  inputTokens?: number;
  outputTokens?: number;
  responseModel?: string;
  finishReasons?: string[];
}

/**
 * A model call (GenAI `chat {model}`, kind CLIENT), child of the active
 * span. The caller ends it with `endModelSpan`.
 */
export function startModelSpan(
  provider: string,
  model: string,
  parent: Context = context.active(),
): Span {
  if (!tracingEnabled()) return NOOP_SPAN;
  return tracer().startSpan(
    `chat ${model}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [GEN_AI.operationName]: "chat",
        [GEN_AI.providerName]: provider,
        [GEN_AI.system]: provider,
        [GEN_AI.requestModel]: model,
      },
    },
    parent,
  );
}

export function endModelSpan(span: Span, end: ModelCallEnd | { error: Error }): void {
  if ("error" in end) {
    span.recordException(end.error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: end.error.message.slice(0, 500) });
    span.setAttribute(ERROR_TYPE, end.error.name || "Error");
  } else {
    if (end.inputTokens !== undefined) span.setAttribute(GEN_AI.inputTokens, end.inputTokens);
    if (end.outputTokens !== undefined) span.setAttribute(GEN_AI.outputTokens, end.outputTokens);
    if (end.responseModel) span.setAttribute(GEN_AI.responseModel, end.responseModel);
    if (end.finishReasons?.length) span.setAttribute(GEN_AI.finishReasons, end.finishReasons);
  }
  span.end();
}

/**
 * The trace side of publishing one event: its context goes into the
 * message's headers. Inside a span (`ctx`: a worker's attempt reporting
 * task_started / task_completed passes the attempt's context; else the
 * active one) the publish is an event of that span and its context is sent:
 * a span per report would double the spans of a task for nothing a backend
 * shows better. Outside any span (the orchestrator dispatching), the publish
 * is a PRODUCER span under the mission's root, returned for the caller to
 * end once the server acknowledged it. Events of no mission (heartbeats)
 * carry nothing.
 */
export function tracePublish(
  headers: HeaderWriter,
  event: { type: string; id: string; mission_id: string | null; task_id: string | null },
  subject: string,
  ctx?: Context,
): Span | null {
  if (!tracingEnabled()) return null;
  const current = trace.getSpan(ctx ?? context.active());
  if (current?.isRecording()) {
    current.addEvent(`publish ${event.type}`, {
      [MESSAGING.destination]: subject,
      [MESSAGING.messageId]: event.id,
    });
    injectSpanContext(headers, current.spanContext());
    return null;
  }
  if (!event.mission_id) return null;
  const span = tracer().startSpan(
    `publish ${event.type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        [MESSAGING.system]: "nats",
        [MESSAGING.destination]: subject,
        [MESSAGING.operation]: "send",
        [MESSAGING.messageId]: event.id,
        [SQUAD.eventType]: event.type,
        [SQUAD.missionId]: event.mission_id,
        ...(event.task_id ? { [SQUAD.taskId]: event.task_id } : {}),
      },
    },
    missionContext(event.mission_id),
  );
  injectSpanContext(headers, span.spanContext());
  return span;
}

/** What a shell span records of its command's end. */
export interface ShellEnd {
  exit_code: number | null;
  timed_out: boolean;
  aborted: boolean;
  limit?: unknown;
}

/** The longest command line a span keeps. */
const COMMAND_CHARS = 1024;

/**
 * One shell command (`shell`, with process.command_line and
 * process.exit.code); a non-zero exit, a timeout, an abort or a limit hit
 * is an error span.
 */
export function shellSpan<T extends ShellEnd>(command: string, fn: () => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return fn();
  return inSpan(
    "shell",
    {
      [PROCESS_COMMAND_LINE]:
        command.length > COMMAND_CHARS ? `${command.slice(0, COMMAND_CHARS)}...` : command,
    },
    async (span) => {
      const r = await fn();
      if (r.exit_code !== null) span.setAttribute(PROCESS_EXIT_CODE, r.exit_code);
      const why = r.timed_out ? "timed out" : r.aborted ? "aborted" : r.limit ? "limit" : null;
      if (why || r.exit_code !== 0) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: why ?? `exit code ${r.exit_code}` });
      }
      return r;
    },
  );
}
