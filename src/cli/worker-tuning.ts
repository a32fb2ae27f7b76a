/**
 * The workers' tuning knobs from the environment (documented in
 * src/cli/commands/worker.ts). Also read by whoever provisions the
 * `worker-<agent>` consumers (the orchestrator, the launcher): under the
 * generated NATS permissions a worker may not create or change its consumer.
 */
import { z } from "zod";
import { BadInputError } from "../errors.ts";

const Millis = z.coerce.number().int().min(1).max(3_600_000);
export const WorkerTuning = z.object({
  SWARM_ACK_WAIT_MS: Millis.min(1000).optional(),
  SWARM_MAX_DELIVER: z.coerce.number().int().min(1).max(100).optional(),
  SWARM_LEASE_MS: Millis.min(300).optional(),
  SWARM_HEARTBEAT_MS: Millis.min(50).optional(),
  SWARM_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).optional(),
  SWARM_MODEL_RETRY_MS: Millis.optional(),
  SWARM_MAX_MODEL_CALLS: z.coerce.number().int().min(1).max(500).optional(),
  // Read by worker-workspaces.ts; checked here so a typo is refused at start.
  SWARM_CHECKOUT_REUSE: z.enum(["0", "1"]).optional(),
});
export type WorkerTuning = z.infer<typeof WorkerTuning>;

/** The knobs of `env`, or a BadInputError naming the variable. */
export function readWorkerTuning(env: NodeJS.ProcessEnv = process.env): WorkerTuning {
  const present = Object.fromEntries(
    Object.keys(WorkerTuning.shape).flatMap((k) => {
      const v = env[k]?.trim();
      return v ? [[k, v]] : [];
    }),
  );
  const r = WorkerTuning.safeParse(present);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new BadInputError(`invalid worker setting: ${what}`);
  }
  return r.data;
}
