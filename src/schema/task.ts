import { z } from "zod";
import { AgentName, CommitId, TaskId } from "./identifiers.ts";

/** `task_assigned.payload.task`: one attempt of one task, as a worker receives it. */
export const Task = z.object({
  id: TaskId,
  agent: AgentName,
  wave: z.number().int().min(1),
  title: z.string().min(1),
  instructions: z.string(),
  depends_on: z.array(TaskId),
  acceptance: z.string(),
  run: z.array(z.string().min(1)).optional(),
  verify: z.array(z.string().min(1)).optional(),
  /** Dependency id → that dependency's result summary. */
  inputs: z.record(z.string(), z.string()),
  timeout_s: z.number().int().positive(),
  attempt: z.number().int().min(1),
  max_attempts: z.number().int().min(1),
  /**
   * The commit this attempt's checkout starts from: the mission branch's
   * head when it was dispatched, holding every task it depends on. Absent
   * in events from before git workspaces (the attempt then works in the
   * mission's shared directory).
   */
  base: CommitId.optional(),
});
export type Task = z.infer<typeof Task>;
