import type { NatsConnection } from "@nats-io/transport-node";
// The bus modules themselves, not the barrel (bus/index.ts): a replica then never loads
// what only the CLI and the orchestrator use (event feed, swarm status).
import { ensureWorkerConsumer } from "../bus/consumers.ts";
import { openJetStreamManager } from "../bus/jetstream-manager.ts";
import { CLAIMS_BUCKET, openLeaseStore, type LeaseStore } from "../bus/leases.ts";
import { isPermissionError } from "../bus/permission-error.ts";
import { provisionStreams } from "../bus/streams.ts";
import { InfrastructureError, errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { STREAMS, workerDurable } from "../schema/index.ts";

/**
 * Streams and the agent's durable, created or checked. Under the generated
 * worker permissions (src/bus/nats-permissions.ts) a worker may read stream
 * and consumer info but not create or change streams or its durable: when
 * they exist (the orchestrator provisions them) a permission error on
 * create/update is fine.
 */
export async function prepareBus(
  nc: NatsConnection,
  agent: string,
  log: Logger,
  consumer: { ackWaitMs?: number; maxDeliver?: number },
): Promise<void> {
  try {
    await provisionStreams(nc);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    const jsm = await openJetStreamManager(nc);
    for (const stream of [STREAMS.tasks, STREAMS.events, STREAMS.status, STREAMS.dlq]) {
      await jsm.streams.info(stream).catch((e: unknown) => {
        throw new InfrastructureError(
          `stream ${stream} is not usable and this NATS user may not create it: ${errorMessage(e)}`,
          "start the orchestrator first (`swarm orchestrator` or `swarm up`): it provisions the streams",
          { cause: e },
        );
      });
    }
    log.info("streams exist; this NATS user may not change them (as nats.conf intends)");
  }
  try {
    await ensureWorkerConsumer(nc, agent, consumer);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    const jsm = await openJetStreamManager(nc);
    await jsm.consumers.info(STREAMS.tasks, workerDurable(agent)).catch((e: unknown) => {
      throw new InfrastructureError(
        `consumer ${workerDurable(agent)} does not exist and this NATS user may not create it: ${errorMessage(e)}`,
        "start the orchestrator first (`swarm orchestrator` or `swarm up`): it creates the consumers of its roster's agents",
        { cause: e },
      );
    });
    log.warn("could not update the consumer's settings (no permission); using it as it is");
  }
}

/** The claims bucket; a worker user can open it but not create it. */
export async function openClaims(nc: NatsConnection): Promise<LeaseStore> {
  try {
    return await openLeaseStore(nc, CLAIMS_BUCKET);
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    throw new InfrastructureError(
      `the KV bucket ${CLAIMS_BUCKET} does not exist and this NATS user may not create it`,
      "start the orchestrator first: it creates the bucket (or create it once: `nats kv add squad_claims --history 1`)",
      { cause: err },
    );
  }
}

export { isPermissionError };
