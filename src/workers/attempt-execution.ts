import type { TaskDelivery } from "../bus/task-puller.ts";
import { BadInputError } from "../errors.ts";
import { ModelUnavailableError } from "../llm/errors.ts";
import type { Step, TaskResult } from "../schema/index.ts";
import type { CommandPolicy } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { createApprovalGate, type ApprovalBroker } from "./approvals.ts";
import type { RosterAgent } from "./roster.ts";
import { executeTask, failedResult } from "./task-executor.ts";

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
 * It never throws: an error becomes a failed result, final (retryable:
 * false) when another attempt would meet it again (a model outage on the
 * last delivery, a configuration error).
 */
export async function executeAttempt(
  opts: ExecutionOptions,
  d: TaskDelivery,
  signal: AbortSignal,
  onStep: (step: Step) => void,
  /** When the attempt started (its task_started), for a failed result's duration. */
  startedAt: number,
): Promise<Execution> {
  const task = d.event.payload.task;
  try {
    const result = await executeTask(task, {
      missionId: d.event.mission_id,
      workspaceRoot: opts.workspaceRoot,
      agent: opts.agent,
      defaultModel: opts.defaultModel,
      worker: opts.worker,
      signal,
      onStep,
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
    return { result, modelUnavailable: false };
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
  }
}
