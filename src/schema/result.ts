import { z } from "zod";
import { CommitId } from "./identifiers.ts";

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

/** One file an attempt changed, as `git diff --numstat` / `--name-status` say. */
export const FileChange = z.object({
  /** Relative to the repository root; for a rename, the new path. */
  path: z.string().min(1),
  status: z.enum(["added", "modified", "deleted", "renamed", "type_changed"]),
  /** The old path of a rename. */
  from: z.string().min(1).optional(),
  /** Lines added / deleted; 0 and 0 with `binary` for a binary file. */
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  binary: z.boolean().optional(),
});
export type FileChange = z.infer<typeof FileChange>;

/**
 * What an attempt changed in its checkout, as one commit on its base:
 * absent when it changed nothing. The commit travels as a git bundle in
 * the `squad_bundles` object store, named `<mission>/<commit>`.
 */
export const Changes = z.object({
  /** The commit the attempt's checkout started from (its task's `base`). */
  base: CommitId,
  /** The attempt's commit (parent: base). */
  commit: CommitId,
  files: z.array(FileChange),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
});
export type Changes = z.infer<typeof Changes>;

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
  /**
   * The attempt's commit when it changed files. A failed attempt's changes
   * are kept too (for inspection, under `refs/squad/<task>/<attempt>`), and
   * never merged.
   */
  changes: Changes.optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;
