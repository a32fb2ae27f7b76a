/**
 * The event guard of a `swarm` command (src/bus/event-guard.ts): what it
 * publishes (a submission, a cancel request, an approval) is signed with the
 * operator identity of the environment (NATS_NKEY, SWARM_IDENTITIES), and
 * what it reads (a mission's final event, the events an approval or the
 * audit is decided from) is checked, so a forged `mission_completed` does not
 * end `--wait` with exit 0. Without a registry (open mode) nothing changes.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { openEventGuard, type EventGuard } from "../bus/event-guard.ts";
import { silentLogger, type Logger } from "../log.ts";

export async function openCliGuard(
  nc: NatsConnection,
  opts: {
    /** The command publishes: with a registry it must hold the operator identity. */
    publishes: boolean;
    log?: Logger;
    env?: NodeJS.ProcessEnv;
  },
): Promise<EventGuard> {
  return openEventGuard(nc, {
    // The raw environment: the validated SwarmEnv keeps only the contract's variables.
    env: opts.env ?? process.env,
    log: opts.log ?? silentLogger,
    ...(opts.publishes ? { expect: { role: "operator" as const } } : {}),
  });
}
