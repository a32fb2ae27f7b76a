import { InfrastructureError } from "../errors.ts";

/**
 * SWARM_STREAM_REPLICAS of the environment, or undefined when unset. Read
 * here, where streams and buckets are made, so that every process of a
 * deployment creates them alike (R3 from the start: nats-server 2.9 does
 * not reliably move consumers when a stream is scaled up later).
 */
export function replicasFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.SWARM_STREAM_REPLICAS?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 5) {
    throw new InfrastructureError(`SWARM_STREAM_REPLICAS must be 1-5, got ${JSON.stringify(raw)}`);
  }
  return n;
}
