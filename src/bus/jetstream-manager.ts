import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { isPermissionError } from "./permission-error.ts";
import { busErrorHint } from "./bus-errors.ts";
import { InfrastructureError } from "../errors.ts";
import { retryTransient } from "./retry.ts";

/**
 * A JetStream manager, or an InfrastructureError saying JetStream is missing.
 * `check` asks the server first (which needs a meta leader on a cluster; a
 * few retries ride out an election); without it nothing is sent.
 */
export async function openJetStreamManager(
  nc: NatsConnection,
  opts: { check?: boolean } = {},
): Promise<JetStreamManager> {
  if (opts.check === false) return jetstreamManager(nc, { checkAPI: false });
  try {
    return await retryTransient(() => jetstreamManager(nc), {
      attempts: 4,
      baseDelayMs: 250,
      maxDelayMs: 1000,
    });
  } catch (err) {
    if (isPermissionError(err)) {
      throw new InfrastructureError(
        `NATS at ${nc.getServer()} refused this user the JetStream API: ${(err as Error).message}`,
        busErrorHint(err),
        { cause: err },
      );
    }
    throw new InfrastructureError(
      `JetStream is not available on ${nc.getServer()}: ${(err as Error).message}`,
      "run nats-server with JetStream enabled (`nats-server -js`, or `jetstream {}` in nats.conf)",
      { cause: err },
    );
  }
}
