import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { STREAMS, subjects, workerDurable } from "../schema/index.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";

export interface WorkerConsumerOptions {
  /** Time a delivery may go without ack or `working()` before redelivery. Default 30 s. */
  ackWaitMs?: number;
  /** Deliveries of one task message before the server gives up. Default 5. */
  maxDeliver?: number;
  /** Unacked messages across ALL replicas of the agent; >= total worker slots. Default 1000. */
  maxAckPending?: number;
}

export const WORKER_CONSUMER_DEFAULTS = { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1000 };

/** The durable on SQUAD_MISSIONS that orchestrators pull submitted missions with. */
export const MISSIONS_DURABLE = "orchestrator";

/** The durable `worker-<agent>` every replica of that agent shares (pure). */
export function workerConsumerConfig(
  agent: string,
  opts: WorkerConsumerOptions = {},
): Partial<ConsumerConfig> {
  const o = { ...WORKER_CONSUMER_DEFAULTS, ...definedOnly(opts) };
  return {
    durable_name: workerDurable(agent),
    filter_subject: subjects.tasks(agent),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(o.ackWaitMs),
    max_deliver: o.maxDeliver,
    max_ack_pending: o.maxAckPending,
  };
}

export function missionsConsumerConfig(): Partial<ConsumerConfig> {
  return {
    durable_name: MISSIONS_DURABLE,
    filter_subject: subjects.missionsSubmit,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_deliver: 5,
    max_ack_pending: 100,
  };
}

/**
 * Create `worker-<agent>` on SQUAD_TASKS, or bring an existing one to the
 * given ack_wait / max_deliver / max_ack_pending. Idempotent.
 */
export async function ensureWorkerConsumer(
  nc: NatsConnection,
  agent: string,
  opts: WorkerConsumerOptions = {},
): Promise<ConsumerInfo> {
  return ensureDurable(
    await openJetStreamManager(nc),
    STREAMS.tasks,
    workerConsumerConfig(agent, opts),
  );
}

/** Create the `orchestrator` durable on SQUAD_MISSIONS. Idempotent. */
export async function ensureMissionsConsumer(nc: NatsConnection): Promise<ConsumerInfo> {
  return ensureDurable(await openJetStreamManager(nc), STREAMS.missions, missionsConsumerConfig());
}

/** JetStream API error code: no such consumer. */
export const CONSUMER_NOT_FOUND = JS_CODES.consumerNotFound;

const COMPARED = [
  "filter_subject",
  "ack_policy",
  "ack_wait",
  "max_deliver",
  "max_ack_pending",
] as const;

async function ensureDurable(
  jsm: JetStreamManager,
  stream: string,
  want: Partial<ConsumerConfig>,
): Promise<ConsumerInfo> {
  const name = want.durable_name!;
  for (let round = 0; ; round++) {
    const have = await consumerInfo(jsm, stream, name);
    if (!have) {
      try {
        return await jsm.consumers.add(stream, want);
      } catch (err) {
        // Another replica created it between our info and add: compare again.
        if (round === 0 && hasJsCode(err, JS_CODES.consumerExists)) continue;
        throw wrap(stream, name, "create", err);
      }
    }
    const patch: Partial<ConsumerConfig> = {};
    for (const k of COMPARED) {
      if (want[k] !== undefined && have.config[k] !== want[k])
        Object.assign(patch, { [k]: want[k] });
    }
    if (!Object.keys(patch).length) return have;
    try {
      return await jsm.consumers.update(stream, name, patch);
    } catch (err) {
      throw wrap(stream, name, `update ${Object.keys(patch).join(", ")} of`, err);
    }
  }
}

async function consumerInfo(
  jsm: JetStreamManager,
  stream: string,
  name: string,
): Promise<ConsumerInfo | null> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (err) {
    if (hasJsCode(err, JS_CODES.consumerNotFound)) return null;
    throw wrap(stream, name, "read", err);
  }
}

function wrap(stream: string, name: string, what: string, err: unknown): InfrastructureError {
  if (hasJsCode(err, JS_CODES.streamNotFound)) {
    return new InfrastructureError(
      `could not ${what} consumer ${name}: stream ${stream} does not exist`,
      "provision the streams first (`swarm up`, or provisionStreams())",
      { cause: err },
    );
  }
  return new InfrastructureError(
    `could not ${what} consumer ${name} on ${stream}: ${(err as Error).message}`,
    undefined,
    {
      cause: err,
    },
  );
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
