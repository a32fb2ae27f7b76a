/**
 * Who is on the bus: the roles of a swarm and their identities.
 *
 * Every process connects as one identity: an nkey (Ed25519) that both
 * authenticates it to NATS (an `nkey:` user in the server's authorization
 * block, with the role's permissions) and signs every event it publishes
 * (headers `Squad-Signer` / `Squad-Signature`). Receivers look the signer's
 * public key up in the registry and accept an event only from a role that may
 * send it (src/bus/event-authority.ts). The registry holds public keys only;
 * each seed lives in its own 0600 file in the swarm's state directory.
 */
import { z } from "zod";
import { AgentName } from "../schema/identifiers.ts";

/**
 * - orchestrator: provisions streams, consumers and buckets; publishes tasks
 *   and every orchestration event (admin of the swarm).
 * - worker: one per agent; pulls its agent's tasks, reports their events.
 * - operator: a person's CLI or dashboard: submits and cancels missions,
 *   resolves approvals (the approver role).
 * - watcher: reads everything, publishes nothing on `squad.>`.
 */
export const Role = z.enum(["orchestrator", "worker", "operator", "watcher"]);
export type Role = z.infer<typeof Role>;

/** One entry of the registry (public: no secret in it). */
export const IdentityRecord = z
  .object({
    /** "orchestrator", "worker-<agent>", "operator", "watcher": the seed file's name. */
    name: z.string().regex(/^[a-z0-9_-]+$/),
    role: Role,
    /** Set exactly for workers: the roster agent whose tasks it may report. */
    agent: AgentName.optional(),
    /** The nkey's public key ("U..."): the NATS user and the signature key. */
    public_key: z.string().regex(/^U[A-Z2-7]{55}$/),
  })
  .refine((r) => (r.role === "worker") === (r.agent !== undefined), {
    message: "a worker identity names its agent, and only a worker does",
  });
export type IdentityRecord = z.infer<typeof IdentityRecord>;

/** `<state>/nats/identities.json`, mirrored into the `squad_identities` KV bucket. */
export const IdentityRegistryFile = z.object({
  version: z.literal(1),
  identities: z.array(IdentityRecord),
});
export type IdentityRegistryFile = z.infer<typeof IdentityRegistryFile>;

/** What a process holds to act as one identity. */
export interface SigningIdentity {
  record: IdentityRecord;
  /** The nkey seed ("SU..."); never logged, never in an event or a task's environment. */
  seed: Uint8Array;
}

/** Message headers that carry an event's signature. */
export const SIGNER_HEADER = "Squad-Signer";
export const SIGNATURE_HEADER = "Squad-Signature";
