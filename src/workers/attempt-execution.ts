import type { TaskDelivery } from "../bus/task-puller.ts";
import { BadInputError } from "../errors.ts";
import { ModelUnavailableError } from "../llm/errors.ts";
import type { TaskResult } from "../schema/index.ts";
import type { CommandPolicy } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { MIB, resolveLimits } from "../tools/task-limits.ts";
import type { Checkout } from "../workspace/attempt-checkout.ts";
import { createApprovalGate, type ApprovalBroker } from "./approvals.ts";
import { commitAttemptResult } from "./attempt-commit.ts";
import type { AttemptReporter } from "./attempt-reporting.ts";
import type { RosterAgent } from "./roster.ts";
import { executeTask, failedResult, needsWorkspace } from "./task-executor.ts";
import type { WorkerWorkspaces } from "./worker-workspaces.ts";

export interface ExecutionOptions {
  workspaceRoot: string;
  agent: RosterAgent;
  defaultModel: string;
  /** `<agent>/<instance>`. */
  worker: string;
  maxModelCalls: number;
  env: NodeJS.ProcessEnv;
  sandbox: ShellSandbox | undefined;
  policy: CommandPolicy;
  approvals: ApprovalBroker;
  /** Checkouts of tasks that have a `base` (absent: every task uses the shared directory). */
  workspaces?: WorkerWorkspaces;
}

export interface Execution {
  /** What the attempt came to; a failed result when it could not run. */
  result: TaskResult;
  /** The model server could not be reached (nothing was decided about the task). */
  modelUnavailable: boolean;
  /** What kept the attempt from running, if anything. */
  error?: unknown;
}

/**
 * Run one attempt (executeTask) under the agent's sandbox and command gate.
 * A task with a `base` runs in its own checkout of that commit (fetched
 * first), and what it changed becomes a commit in `result.changes`
 * (attempt-commit.ts); a `run: []` task without verify needs none. It never
 * throws: an error becomes a failed result, final (retryable: false) when
 * another attempt would meet it again (a model outage on the last
 * delivery, a configuration error).
 */
export async function executeAttempt(
  opts: ExecutionOptions,
  d: TaskDelivery,
  signal: AbortSignal,
  /** Where its steps and model calls go as they happen (→ task_progress, task_model_called). */
  report: Pick<AttemptReporter, "onStep" | "onModelCall">,
  /** When the attempt started (its task_started), for a failed result's duration. */
  startedAt: number,
): Promise<Execution> {
  const task = d.event.payload.task;
  const missionId = d.event.mission_id;
  let checkout: Checkout | null = null;
  try {
    if (task.base && opts.workspaces && needsWorkspace(task)) {
      checkout = await opts.workspaces.acquire(missionId, task.base);
    }
    const result = await executeTask(task, {
      missionId,
      workspaceRoot: opts.workspaceRoot,
      ...(checkout ? { workspace: checkout.dir } : {}),
      agent: opts.agent,
      defaultModel: opts.defaultModel,
      worker: opts.worker,
      signal,
      onStep: report.onStep,
      onModelCall: report.onModelCall,
      maxModelCalls: opts.maxModelCalls,
      env: opts.env,
      ...(opts.sandbox ? { sandbox: opts.sandbox } : {}),
      gate: createApprovalGate({
        policy: opts.policy,
        broker: opts.approvals,
        missionId: d.event.mission_id,
        taskId: task.id,
        attempt: task.attempt,
        correlationId: d.event.id,
      }),
    });
    if (!checkout) return { result, modelUnavailable: false };
    const limits = opts.sandbox?.limits ?? resolveLimits(opts.agent.limits);
    const committed = await commitAttemptResult(checkout, task, result, {
      missionId,
      worker: opts.worker,
      agent: opts.agent.name,
      maxFileBytes: limits.file_mb * MIB,
      signal,
    });
    return { result: committed, modelUnavailable: false };
  } catch (err) {
    const modelUnavailable = err instanceof ModelUnavailableError;
    const final = modelUnavailable || err instanceof BadInputError;
    return {
      result: failedResult(task, opts.worker, err, {
        model: opts.agent.model ?? opts.defaultModel,
        retryable: !final,
        startedAt,
      }),
      modelUnavailable,
      error: err,
    };
  } finally {
    await checkout?.release();
  }
}
