/**
 * The event guard of one process: its own signing identity (for its
 * publisher) and the check of every event it decodes: a known signer, a
 * valid signature (event-signing.ts), and a signer that may send it
 * (event-authority.ts). A refused event is logged (warn, with the reason and
 * the source it claims) and counted, and the caller does not apply it.
 *
 * Open mode: with no registry (no SWARM_IDENTITIES, no or an empty
 * `squad_identities` bucket) nothing is signed or checked, and the guard
 * says at start that the bus is unauthenticated. With a registry, an
 * unsigned event is refused: a process left in open mode (no registry
 * given) next to signed ones has all of its events refused.
 */
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { BadInputError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import type { SquadEvent } from "../schema/index.ts";
import { authorize, type AuthorityContext } from "./event-authority.ts";
import { checkSignature, createEventSigner, type EventSigner } from "./event-signing.ts";
import type { IdentityRecord, Role } from "./identity.ts";
import {
  IdentityRegistry,
  identityForSeed,
  openIdentityRegistry,
  publishIdentities,
  readIdentityRegistryFile,
  readSeedFile,
} from "./identity-registry.ts";

/** A message as a receiver has it: enough to check its signature. */
export interface ReceivedMessage {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs | undefined;
}

export type Admission =
  { accept: true; signer: IdentityRecord | null } | { accept: false; reason: string };

export interface EventGuard {
  /** "open": no registry, nothing checked; "signed": every event must be signed and allowed. */
  mode(): "open" | "signed";
  /** What this process signs its events with (null in open mode or without NATS_NKEY). */
  readonly signer: EventSigner | null;
  /** Check one decoded event; a refusal is logged and counted here. */
  admit(msg: ReceivedMessage, event: SquadEvent, context?: AuthorityContext): Admission;
  /** Events refused since start. */
  refused(): number;
  stop(): Promise<void>;
}

export interface EventGuardOptions {
  /** SWARM_IDENTITIES (registry file) and NATS_NKEY (this process's seed) are read from it. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** The role this process must hold when a registry is configured (a worker: of this agent). */
  expect?: { role: Role; agent?: string };
  /** The orchestrator: write the registry file into the `squad_identities` bucket first. */
  publishRegistry?: { replicas?: number };
}

/** A guard that checks nothing: for code paths and tests that run without a registry. */
export function openModeGuard(): EventGuard {
  return {
    mode: () => "open",
    signer: null,
    admit: () => ({ accept: true, signer: null }),
    refused: () => 0,
    stop: async () => undefined,
  };
}

export async function openEventGuard(
  nc: NatsConnection,
  opts: EventGuardOptions = {},
): Promise<EventGuard> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLogger;
  const filePath = env.SWARM_IDENTITIES?.trim();
  const seedPath = env.NATS_NKEY?.trim();
  const file = filePath ? await readIdentityRegistryFile(filePath) : undefined;
  const seed = seedPath ? await readSeedFile(seedPath) : undefined;

  let signer: EventSigner | null = null;
  if (file && seed) {
    signer = createEventSigner(identityForSeed(seed, new IdentityRegistry(file)));
    if (opts.publishRegistry && signer.record.role === "orchestrator") {
      await publishIdentities(nc, new IdentityRegistry(file), signer, opts.publishRegistry);
    }
  }

  let wasSigned: boolean | null = null;
  const source = await openIdentityRegistry(nc, {
    ...(file ? { file } : {}),
    log,
    onChange: (registry) => {
      const signed = registry.size > 0;
      if (wasSigned === false && signed) {
        log.warn("identity registry appeared in squad_identities: events are checked from now on");
      }
      wasSigned = signed;
    },
  });
  const registry = source.registry;
  wasSigned = registry.size > 0;
  // A seed without the file: its record comes from the bucket.
  if (!signer && seed && registry.size > 0)
    signer = createEventSigner(identityForSeed(seed, registry));

  if (registry.size === 0) {
    log.warn(
      "the bus is unauthenticated: no identity registry (SWARM_IDENTITIES, KV squad_identities), so events are neither signed nor checked",
    );
  } else {
    checkExpected(signer, opts.expect);
    log.info(
      { identities: registry.size, as: signer?.record.name ?? null },
      "event signatures on: every event is signed and checked against the identity registry",
    );
  }

  let refusedCount = 0;
  return {
    mode: () => (registry.size > 0 ? "signed" : "open"),
    signer,
    refused: () => refusedCount,
    stop: () => source.stop(),
    admit(msg, event, context) {
      if (registry.size === 0) return { accept: true, signer: null };
      const sig = checkSignature(
        { subject: msg.subject, data: msg.data, header: (name) => msg.headers?.get(name) },
        (key) => registry.get(key),
      );
      const verdict = sig.ok
        ? authorize({
            event,
            subject: msg.subject,
            signer: sig.signer,
            ...(context ? { context } : {}),
          })
        : { accept: false as const, reason: sig.reason };
      if (verdict.accept) return { accept: true, signer: sig.ok ? sig.signer : null };
      refusedCount++;
      log.warn(
        {
          reason: verdict.reason,
          type: event.type,
          id: event.id,
          mission: event.mission_id,
          task: event.task_id,
          claimed_source: event.source,
          signer: sig.ok ? sig.signer.name : sig.signer_key,
          subject: msg.subject,
          refused_events: refusedCount,
        },
        "event refused",
      );
      return { accept: false, reason: verdict.reason };
    },
  };
}

/** With a registry, a process acting as a role must hold that role's identity. */
function checkExpected(signer: EventSigner | null, expect: EventGuardOptions["expect"]): void {
  if (!expect) return;
  const want = expect.role === "worker" ? `worker-${expect.agent}` : expect.role;
  if (!signer) {
    throw new BadInputError(
      `an identity registry is configured but this ${want} has no identity: its events would all be refused` +
        "; " +
        "set NATS_NKEY to its seed file (swarm up and deploy-swarm hand each process its own)",
    );
  }
  const r = signer.record;
  if (r.role !== expect.role || (expect.agent !== undefined && r.agent !== expect.agent)) {
    throw new BadInputError(
      `NATS_NKEY holds the identity ${r.name} (${r.role}${r.agent ? ` of ${r.agent}` : ""}), but this process runs as ${want}: give it the seed of ${want}`,
    );
  }
}
