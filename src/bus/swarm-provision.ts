/**
 * What must exist before workers start, created by the admin role (the
 * orchestrator's identity): under the generated permissions a worker may not
 * create streams, its `worker-<agent>` consumer or the claims bucket.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { STREAMS, workerDurable } from "../schema/index.ts";
import {
  CONSUMER_NOT_FOUND,
  ensureWorkerConsumer,
  type WorkerConsumerOptions,
} from "./consumers.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import type { NatsConnection } from "./connect.ts";
import { CLAIMS_BUCKET, openLeaseStore } from "./leases.ts";
import { provisionStreams } from "./streams.ts";
import { silentLogger, type Logger } from "../log.ts";

/**
 * The `worker-<agent>` consumers of these agents (idempotent). `createOnly`
 * leaves existing ones as they are: an orchestrator must not undo the
 * ack_wait its workers were started with.
 */
export async function ensureWorkerConsumers(
  nc: NatsConnection,
  agents: readonly string[],
  consumer: WorkerConsumerOptions = {},
  opts: { createOnly?: boolean } = {},
): Promise<void> {
  const jsm = opts.createOnly ? await openJetStreamManager(nc) : null;
  for (const agent of new Set(agents)) {
    if (jsm) {
      const exists = await jsm.consumers.info(STREAMS.tasks, workerDurable(agent)).then(
        () => true,
        (err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND) return false;
          throw err;
        },
      );
      if (exists) continue;
    }
    await ensureWorkerConsumer(nc, agent, consumer);
  }
}

/** Streams and the bundle object store, the agents' consumers and the claims bucket (idempotent). */
export async function provisionSwarm(
  nc: NatsConnection,
  opts: { agents: readonly string[]; consumer?: WorkerConsumerOptions; log?: Logger },
): Promise<void> {
  await provisionStreams(nc, { log: opts.log ?? silentLogger });
  await ensureWorkerConsumers(nc, opts.agents, opts.consumer);
  await openLeaseStore(nc, CLAIMS_BUCKET);
}
