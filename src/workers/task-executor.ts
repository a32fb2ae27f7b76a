import { mkdir } from "node:fs/promises";
import { missionWorkspace } from "../config.ts";
import { InfrastructureError, errorMessage } from "../errors.ts";
import type { Step, Task, TaskResult, Usage, VerificationCheck } from "../schema/index.ts";
import { notRunText, type CommandGate, type GateOutcome } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { runShell } from "../tools/shell.ts";
import { truncateText } from "../tools/truncate.ts";
import type { ModelCall } from "./model-call.ts";
import type { RosterAgent } from "./roster.ts";

/** Output kept per step in results and progress events. */
export const STEP_OUTPUT_LIMIT = 4096;
/** A verify command gets at most this long, and never more than the task has left. */
const VERIFY_TIMEOUT_MS = 120_000;
/** Abort reasons the replica gives the task's signal. */
export const TIMEOUT_REASON = "timeout";
export const DRAIN_REASON = "drain";

export interface ExecuteTaskContext {
  missionId: string;
  workspaceRoot: string;
  /**
   * The attempt's own checkout (a task with a `base`, attempt-checkout.ts);
   * absent: the mission's shared directory `<workspaceRoot>/<mission>`.
   */
  workspace?: string;
  agent: RosterAgent;
  /** Model spec when the roster entry names none (SWARM_WORKER_MODEL). */
  defaultModel: string;
  /** `<agent>/<instance>`. */
  worker: string;
  /** Aborted on timeout, cancellation or drain; the reason says which. */
  signal: AbortSignal;
  /** Called for every tool or run step, in order (→ `task_progress`). */
  onStep: (step: Step) => void;
  /** Called as each model call of a model-driven task ends (→ `task_model_called`). */
  onModelCall?: (call: ModelCall) => void;
  maxModelCalls: number;
  /** Where model endpoints (OLLAMA_HOST, OPENAI_*) are read; never given to commands. */
  env?: NodeJS.ProcessEnv;
  /** OS sandbox of every command: run steps, the agent's run_shell, verify (absent: none). */
  sandbox?: ShellSandbox;
  /** Asked before every command: the agent's policy and approvals (absent: all run). */
  gate?: CommandGate;
}

/**
 * Runs one attempt of a task in the mission's workspace and says what
 * happened: `run` steps in order without a model (an empty `run` runs
 * nothing: a no-op or checks-only task), else a ReAct agent; then the
 * `verify` checks, which decide success whatever the model claimed.
 * Model-server outages are thrown (ModelUnavailableError) so the caller can
 * hand the attempt back; everything else becomes a failed result.
 */
export async function executeTask(task: Task, ctx: ExecuteTaskContext): Promise<TaskResult> {
  const startedAt = Date.now();
  const deadline = startedAt + task.timeout_s * 1000;
  const workspace = ctx.workspace ?? missionWorkspace(ctx.workspaceRoot, ctx.missionId);
  // A task that runs no command at all (`run: []`, no verify) needs no workspace: skip the syscall.
  if (!ctx.workspace && needsWorkspace(task)) await mkdir(workspace, { recursive: true });
  const steps: Step[] = [];
  const record = (step: Step) => {
    steps.push(step);
    ctx.onStep(step);
  };
  let usage: Usage = { model: null, input_tokens: 0, output_tokens: 0 };
  let summary: string;
  let error: string | undefined;

  const sandbox = ctx.sandbox ? { sandbox: ctx.sandbox } : {};
  const admit = async (command: string): Promise<GateOutcome> =>
    ctx.gate ? ctx.gate.admit(command, ctx.signal) : { run: true };
  /**
   * A plan command the policy refused, a person denied, or that hit a resource limit:
   * another attempt would meet the same answer.
   */
  let refusedForGood = false;
  const isFinal = (o: Extract<GateOutcome, { run: false }>) =>
    !o.approval || o.approval.decision === "denied";

  // An explicit `run`, even empty, means no model: `run: []` is a checks-only or no-op task.
  if (task.run) {
    for (const [i, command] of task.run.entries()) {
      const askedAt = Date.now();
      const admitted = await admit(command);
      const approval = admitted.approval ? { approval_id: admitted.approval.id } : {};
      if (!admitted.run) {
        record({
          tool: "run_shell",
          args: { command, ...approval },
          ok: false,
          exit_code: null,
          duration_ms: Date.now() - askedAt,
          output: notRunText(admitted),
        });
        error = `run step ${i + 1} was not run (${admitted.reason}): ${command}`;
        refusedForGood = isFinal(admitted);
        break;
      }
      const r = await runShell({
        command,
        cwd: workspace,
        timeoutMs: Math.max(1, deadline - Date.now()),
        signal: ctx.signal,
        ...sandbox,
      });
      const ok = r.exit_code === 0 && !r.timed_out && !r.aborted && !r.limit;
      record({
        tool: "run_shell",
        args: { command, ...approval },
        ok,
        exit_code: r.exit_code,
        duration_ms: r.duration_ms,
        output: truncateText(r.output, STEP_OUTPUT_LIMIT),
      });
      if (!ok) {
        // The same command would meet the same limit again: no point in another attempt.
        if (r.limit) refusedForGood = true;
        error = r.limit
          ? `run step ${i + 1} stopped: ${r.limit.message}: ${command}`
          : r.timed_out
            ? `run step ${i + 1} timed out: ${command}`
            : `run step ${i + 1} exited with code ${r.exit_code ?? "(killed)"}: ${command}`;
        break;
      }
    }
    summary = error
      ? error
      : task.run.length
        ? `ran ${task.run.length} step(s) in ${workspace}`
        : "no run steps (run: [])";
  } else {
    const model = ctx.agent.model ?? ctx.defaultModel;
    // LangChain loads only for model-driven tasks: run-only replicas start fast.
    const { runAgentTask } = await import("./agent-run.ts");
    const out = await runAgentTask({
      task,
      workspace,
      persona: ctx.agent.persona,
      toolNames: ctx.agent.tools,
      modelSpec: model,
      signal: ctx.signal,
      onStep: record,
      ...(ctx.onModelCall ? { onModelCall: ctx.onModelCall } : {}),
      maxModelCalls: ctx.maxModelCalls,
      deadline,
      env: ctx.env,
      ...sandbox,
      ...(ctx.gate ? { gate: ctx.gate } : {}),
    });
    usage = out.usage;
    summary = out.summary;
    // Without verify checks nothing else shows the work was done.
    if (out.error) error = out.error;
    else if (out.limitReached && !task.verify?.length) {
      error = `the model used all ${ctx.maxModelCalls} model calls without finishing`;
    } else if (out.toolCalls === 0 && !task.verify?.length && !ctx.signal.aborted) {
      error = "the model called no tool, even when reminded, so nothing was done";
    }
  }

  if (ctx.signal.aborted) error = abortMessage(ctx.signal, task);

  const verification: VerificationCheck[] = [];
  if (!error && task.verify?.length) {
    for (const command of task.verify) {
      const admitted = await admit(command);
      if (!admitted.run) {
        verification.push({ command, ok: false, exit_code: null, output: notRunText(admitted) });
        if (!error) refusedForGood = isFinal(admitted);
        error ??= `verification was not run (${admitted.reason}): ${command}`;
        continue;
      }
      const r = await runShell({
        command,
        cwd: workspace,
        timeoutMs: Math.max(1, Math.min(VERIFY_TIMEOUT_MS, deadline - Date.now())),
        signal: ctx.signal,
        ...sandbox,
      });
      const ok = r.exit_code === 0 && !r.timed_out && !r.aborted && !r.limit;
      verification.push({
        command,
        ok,
        exit_code: r.exit_code,
        output: truncateText(r.output, STEP_OUTPUT_LIMIT),
      });
      if (!ok && !error) {
        if (r.limit) refusedForGood = true;
        error = r.limit
          ? `verification stopped: ${r.limit.message}: \`${command}\``
          : r.timed_out
            ? `verification timed out: ${command}`
            : `verification failed: \`${command}\` exited with code ${r.exit_code ?? "(killed)"}`;
      }
    }
    if (ctx.signal.aborted) error = abortMessage(ctx.signal, task);
  }

  return {
    status: error ? "failed" : "succeeded",
    summary: summary || (error ?? "done"),
    ...(error ? { error } : {}),
    steps,
    verification,
    usage,
    attempt: task.attempt,
    duration_ms: Date.now() - startedAt,
    worker: ctx.worker,
    ...(error && refusedForGood && !ctx.signal.aborted ? { retryable: false } : {}),
  };
}

/** Does the task run anything (a model, a run step, a verify check)? `run: []` alone does not. */
export function needsWorkspace(task: Pick<Task, "run" | "verify">): boolean {
  return !task.run || task.run.length > 0 || (task.verify?.length ?? 0) > 0;
}

/** A failed result for an attempt that could not run at all. */
export function failedResult(
  task: Task,
  worker: string,
  err: unknown,
  opts: { model?: string | null; retryable?: boolean; startedAt?: number } = {},
): TaskResult {
  // An infrastructure error's hint says what to do about it (start the model server...).
  const message =
    err instanceof InfrastructureError && err.hint
      ? `${errorMessage(err)} (${err.hint})`
      : errorMessage(err);
  return {
    status: "failed",
    summary: message,
    error: message,
    steps: [],
    verification: [],
    usage: { model: opts.model ?? null, input_tokens: 0, output_tokens: 0 },
    attempt: task.attempt,
    duration_ms: opts.startedAt ? Date.now() - opts.startedAt : 0,
    worker,
    ...(opts.retryable === undefined ? {} : { retryable: opts.retryable }),
  };
}

function abortMessage(signal: AbortSignal, task: Task): string {
  const reason: unknown = signal.reason;
  if (reason === TIMEOUT_REASON) return `timed out after ${task.timeout_s}s`;
  if (reason === DRAIN_REASON) return "the worker stopped (drain) before the task finished";
  if (typeof reason === "string") return reason;
  return `aborted: ${errorMessage(reason)}`;
}
