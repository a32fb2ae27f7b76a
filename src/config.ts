import path from "node:path";
import { z } from "zod";
import { BadInputError } from "./errors.ts";

/** Environment of the contract, validated once at the edge. */
const EnvSchema = z.object({
  NATS_URL: z.string().min(1).default("nats://127.0.0.1:4222"),
  NATS_USER: z.string().optional(),
  NATS_PASS: z.string().optional(),
  /** Credentials and TLS of the client (src/bus/nats-auth.ts); at most one credential. */
  NATS_CREDS: z.string().optional(),
  NATS_NKEY: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_CA: z.string().optional(),
  NATS_CERT: z.string().optional(),
  NATS_KEY: z.string().optional(),
  /** `none`: the launcher runs (or accepts) NATS without authentication, with a warning. */
  SWARM_NATS_AUTH: z.enum(["nkey", "none"]).default("nkey"),
  /** The swarm's state (credentials, key registry, local server): src/bus/state-dir.ts. */
  SWARM_STATE_DIR: z.string().min(1).default(".swarm/state"),
  /** The identity registry (public keys); default `<state>/nats/identities.json`. */
  SWARM_IDENTITIES: z.string().optional(),
  /** A user that may subscribe only on its own inbox prefix (see nats.conf). */
  SWARM_NATS_INBOX_PREFIX: z.string().optional(),
  SWARM_WORKSPACE: z.string().min(1).default(".swarm/workspace"),
  SWARM_ROSTER: z.string().optional(),
  SWARM_PLANNER_MODEL: z.string().optional(),
  SWARM_WORKER_MODEL: z.string().default("ollama:qwen2.5:7b"),
  OLLAMA_HOST: z.string().optional(),
  OPENAI_BASE_URL: z.string().optional(),
  OPENAI_API_KEY: z.string().optional(),
  SWARM_EVENTS_MAX_AGE_S: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
  SWARM_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
});
export type SwarmEnv = z.infer<typeof EnvSchema>;

export function readEnv(env: NodeJS.ProcessEnv = process.env): SwarmEnv {
  const r = EnvSchema.safeParse(env);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new BadInputError(`invalid environment: ${what}`);
  }
  return r.data;
}

/** The mission's one workspace: `<SWARM_WORKSPACE>/<mission_id>/`. */
export function missionWorkspace(root: string, missionId: string): string {
  return path.resolve(root, missionId);
}

/** Reports: `<SWARM_WORKSPACE>/reports/<mission_id>.md|.json`. */
export function reportPaths(root: string, missionId: string): { md: string; json: string } {
  const dir = path.resolve(root, "reports");
  return { md: path.join(dir, `${missionId}.md`), json: path.join(dir, `${missionId}.json`) };
}
