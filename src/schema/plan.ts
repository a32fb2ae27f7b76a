import { z } from "zod";
import { AgentName, TaskId } from "./identifiers.ts";

/** One task as the planner (or a brief's explicit plan) writes it. */
export const PlanTask = z.object({
  id: TaskId,
  agent: AgentName,
  title: z.string().min(1),
  instructions: z.string().default(""),
  /** Omitted: depends on every task of the previous wave. */
  depends_on: z.array(TaskId).optional(),
  acceptance: z.string().default(""),
  /** Shell commands run in order without a model. */
  run: z.array(z.string().min(1)).optional(),
  /** Shell checks run after the work; all must exit 0. */
  verify: z.array(z.string().min(1)).optional(),
  timeout_s: z.number().int().positive().optional(),
  max_attempts: z.number().int().min(1).max(20).optional(),
});
export type PlanTask = z.infer<typeof PlanTask>;

export const PlanWave = z.object({
  wave: z.number().int().min(1),
  rationale: z.string().default(""),
  tasks: z.array(PlanTask).min(1, "a wave needs at least one task"),
});
export type PlanWave = z.infer<typeof PlanWave>;

/** The plan (contract): the planner's structured output and a brief's explicit plan. */
export const Plan = z.object({
  strategy: z.string().default(""),
  waves: z.array(PlanWave).min(1, "a plan needs at least one wave"),
  risks: z.array(z.string()).default([]),
  success_criteria: z.array(z.string()).default([]),
});
export type Plan = z.infer<typeof Plan>;
export type PlanInput = z.input<typeof Plan>;
