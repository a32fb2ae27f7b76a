import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { SpanStatusCode, type Context } from "@opentelemetry/api";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { AgentName, ensureEvent, parseWith, subjects, type SquadEvent } from "../schema/index.ts";
import { notePublished, tracePublish } from "../telemetry/index.ts";
import type { EventSigner } from "./event-signing.ts";
import { DEFAULT_RETRY, retryTransient, type RetryPolicy } from "./retry.ts";

/** Headers that let a subscriber filter without decoding the JSON. */
export const SQUAD_TYPE_HEADER = "Squad-Type";
export const SQUAD_MISSION_HEADER = "Squad-Mission";

export interface PublishOptions {
  /** PubAck timeout of one attempt. Default 5 s. */
  timeoutMs?: number;
  /**
   * The span this event reports on (a worker's attempt: TaskDelivery's
   * traceContext), instead of the active context: the publish is an event of
   * that span and the message carries its trace context.
   */
  traceContext?: Context;
}

export interface PublishResult {
  /** Stream sequence (of the first copy, for a duplicate). */
  seq: number;
  /** JetStream dropped it: the same `event.id` was stored inside the duplicate window. */
  duplicate: boolean;
  stream: string;
}

export interface Publisher {
  publish(event: SquadEvent, opts?: PublishOptions): Promise<PublishResult>;
}

export interface PublisherOptions {
  log?: Logger;
  /** Bounded retry of transient failures (no stream yet, timeout during a restart). */
  retry?: Partial<RetryPolicy>;
  /** Signs every event (headers Squad-Signer / Squad-Signature, see event-signing.ts); none in open mode. */
  signer?: EventSigner | null;
}

/** A status event's instance id ends up in the subject, so it's stricter than the payload schema. */
const StatusRoute = z.object({
  payload: z.object({
    agent: AgentName,
    instance: z
      .string()
      .regex(
        /^[A-Za-z0-9_-]{1,80}$/,
        "instance ids are 1-80 characters of A-Z, a-z, 0-9, '_' or '-'",
      ),
  }),
});

/** The subject of the contract for an event (pure). */
export function subjectFor(event: SquadEvent): string {
  switch (event.type) {
    case "task_assigned":
      return subjects.tasks(event.payload.task.agent);
    case "agent_online":
    case "agent_heartbeat":
    case "agent_offline": {
      const { payload } = parseWith(StatusRoute, event, `${event.type} event`);
      return subjects.status(payload.agent, payload.instance);
    }
    case "mission_submitted":
      return subjects.missionsSubmit;
    default:
      return subjects.coordination;
  }
}

/**
 * Typed JetStream publish: validates before anything is sent, routes by type,
 * dedupes on `event.id` (Nats-Msg-Id), retries transient failures a bounded
 * number of times, then throws an InfrastructureError. With tracing on, the
 * W3C trace context of each event of a mission goes into the message's
 * `traceparent` / `tracestate` headers (src/telemetry/spans.ts
 * `tracePublish`: the active span's, or a PRODUCER span's under the
 * mission's root); the signature does not cover them. Every event it published is shown to the telemetry layer
 * (counts of tasks, tokens, missions: src/telemetry/published-events.ts).
 */
export function createPublisher(nc: NatsConnection, options: PublisherOptions = {}): Publisher {
  const log = options.log ?? silentLogger;
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const js: JetStreamClient = jetstream(nc);
  const encoder = new TextEncoder();

  return {
    async publish(event, opts = {}) {
      // Throws SchemaValidationError naming the field; nothing has been sent yet. An event
      // makeEvent just built is not parsed twice.
      const valid = ensureEvent(event);
      const subject = subjectFor(valid);
      const h = headers();
      h.set(SQUAD_TYPE_HEADER, valid.type);
      if (valid.mission_id) h.set(SQUAD_MISSION_HEADER, valid.mission_id);
      const data = encoder.encode(JSON.stringify(valid));
      if (options.signer) {
        for (const [k, v] of Object.entries(options.signer.sign(subject, data))) h.set(k, v);
      }
      const span = tracePublish(h, valid, subject, opts.traceContext);
      try {
        const ack = await retryTransient(
          () =>
            js.publish(subject, data, {
              msgID: valid.id,
              headers: h,
              timeout: opts.timeoutMs ?? 5000,
            }),
          policy,
          (err, attempt, delayMs) =>
            log.warn(
              { err: (err as Error).message, subject, id: valid.id, attempt, delayMs },
              "publish failed; retrying",
            ),
        );
        if (ack.duplicate) {
          log.info(
            { subject, id: valid.id, type: valid.type, seq: ack.seq },
            "duplicate event dropped by JetStream",
          );
        }
        if (!ack.duplicate) notePublished(valid, opts.traceContext);
        span?.end();
        return { seq: ack.seq, duplicate: ack.duplicate, stream: ack.stream };
      } catch (err) {
        span?.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        span?.end();
        throw new InfrastructureError(
          `could not publish ${valid.type} ${valid.id} to ${subject}: ${(err as Error).message}`,
          "check that NATS runs with JetStream and the squad streams are provisioned (`swarm up`)",
          { cause: err },
        );
      }
    },
  };
}
