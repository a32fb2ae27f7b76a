import { z } from "zod";

/** One tool call (model-driven) or one `run` step, as recorded in a result. */
export const Step = z.object({
  tool: z.string().min(1),
  args: z.record(z.string(), z.unknown()),
  ok: z.boolean(),
  exit_code: z.number().int().nullable().optional(),
  duration_ms: z.number().nonnegative(),
  /** Truncated; a truncation note is part of the text when cut. */
  output: z.string(),
});
export type Step = z.infer<typeof Step>;

export const VerificationCheck = z.object({
  command: z.string(),
  ok: z.boolean(),
  exit_code: z.number().int().nullable(),
  output: z.string(),
});
export type VerificationCheck = z.infer<typeof VerificationCheck>;

export const Usage = z.object({
  /** Model spec, or null for a run-only task. */
  model: z.string().nullable(),
  input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;

/** `task_completed.payload.result` / `task_failed.payload.result`. */
export const TaskResult = z.object({
  status: z.enum(["succeeded", "failed"]),
  summary: z.string(),
  error: z.string().optional(),
  steps: z.array(Step),
  verification: z.array(VerificationCheck),
  usage: Usage,
  attempt: z.number().int().min(1),
  duration_ms: z.number().nonnegative(),
  /** `<agent>/<instance>` of the replica that ran it. */
  worker: z.string().min(1),
  /**
   * false when the failure is final for this task whatever attempts remain
   * (e.g. deliveries exhausted); the orchestrator may still replan.
   */
  retryable: z.boolean().optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;
