/**
 * After an attempt ran in its checkout: check what it left (tree-check.ts,
 * one walk that also stamps the checkout, so an attempt that changed nothing
 * commits without git), commit it (attempt-checkout.ts) and put `changes` in
 * the result. A
 * succeeded attempt's commit is what the orchestrator merges; a failed
 * one's is kept under `refs/squad/<task>/<attempt>` for inspection and never
 * merged. A checkout holding what must not be committed (a nested
 * repository, a symlink out of it, an oversized or special file) fails the
 * attempt, final: nothing of it reaches a commit.
 */
import { errorMessage } from "../errors.ts";
import type { Task, TaskResult } from "../schema/index.ts";
import type { Checkout } from "../workspace/attempt-checkout.ts";
import { BundleTooLargeError } from "../workspace/bundle-store.ts";
import { describeProblems } from "../workspace/tree-check.ts";
import { TIMEOUT_REASON } from "./task-executor.ts";

export interface CommitContext {
  missionId: string;
  /** `<agent>/<instance>`. */
  worker: string;
  agent: string;
  maxFileBytes: number;
  signal: AbortSignal;
}

/** The ref a failed attempt's changes are kept under. */
export function failedAttemptRef(task: Pick<Task, "id" | "attempt">): string {
  return `refs/squad/${task.id}/${task.attempt}`;
}

function failWith(result: TaskResult, message: string, retryable?: boolean): TaskResult {
  const error =
    result.status === "failed" && result.error ? `${result.error}; ${message}` : message;
  return {
    ...result,
    status: "failed",
    summary: result.status === "failed" ? result.summary : message,
    error,
    ...(retryable === undefined ? {} : { retryable }),
  };
}

export async function commitAttemptResult(
  checkout: Checkout,
  task: Task,
  result: TaskResult,
  ctx: CommitContext,
): Promise<TaskResult> {
  // Drained, cancelled or lost: the attempt is handed back or moot; a timeout's work is kept.
  if (ctx.signal.aborted && ctx.signal.reason !== TIMEOUT_REASON) return result;
  const walk = await checkout.inspect({ maxFileBytes: ctx.maxFileBytes });
  if (walk.problems.length > 0) return failWith(result, describeProblems(walk.problems), false);
  const failed = result.status === "failed";
  let changes;
  try {
    changes = await checkout.commitAttempt(
      {
        author: { name: ctx.worker, email: `${ctx.agent}@squad.local` },
        title: task.title,
        trailers: {
          "Squad-Mission": ctx.missionId,
          "Squad-Task": task.id,
          "Squad-Attempt": String(task.attempt),
          "Squad-Agent": ctx.agent,
          ...(failed ? { "Squad-Status": "failed" } : {}),
        },
      },
      walk,
    );
    if (changes && failed) await checkout.keepFailed(failedAttemptRef(task));
  } catch (err) {
    // Too big to ship is final for a success; a failed attempt keeps its own retry decision.
    if (err instanceof BundleTooLargeError) {
      return failWith(result, err.message, failed ? undefined : false);
    }
    return failWith(result, `could not commit the attempt's changes: ${errorMessage(err)}`);
  }
  return changes ? { ...result, changes } : result;
}
