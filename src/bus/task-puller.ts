import { setImmediate, setTimeout as sleep } from "node:timers/promises";
import {
  jetstream,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { SpanStatusCode, type Context } from "@opentelemetry/api";
import { InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  STREAMS,
  assertAgentName,
  decodeEvent,
  workerDurable,
  type EventOf,
  type SquadEvent,
} from "../schema/index.ts";
import type { ReceivedMessage } from "./event-guard.ts";
import { buildDlqRecord, publishDeadLetter } from "./dead-letter.ts";
import { backoffDelay } from "../backoff.ts";
import { isTransientNatsError } from "./retry.ts";
import { hasJsCode, JS_CODES } from "./jetstream-codes.ts";
import { contextOf, metrics, SQUAD, startAttemptSpan } from "../telemetry/index.ts";

/** One delivery of one `task_assigned` message to this replica. */
export interface TaskDelivery {
  /** A task_assigned with its mission id (one without is dead-lettered before any handler sees it). */
  event: EventOf<"task_assigned"> & { mission_id: string };
  /** 1 on the first delivery; JetStream counts redeliveries after a nak, a timeout or a crash. */
  deliveryCount: number;
  /** The consumer's max_deliver (-1: unlimited). */
  maxDeliver: number;
  /** No redelivery will follow this one: report the failure as final. */
  isLastDelivery: boolean;
  /** Sequence of the message in SQUAD_TASKS. */
  streamSeq: number;
  /**
   * The attempt span's context (ROOT_CONTEXT when tracing is off). The handler
   * is not run in it: entering an AsyncLocalStorage context makes every async
   * step after it slower (Node's queueMicrotask, which nats.js flushes with,
   * then wraps each callback in an AsyncResource). Reports are published with
   * it (PublishOptions.traceContext) and the work that starts child spans
   * (commands, tools, model calls) runs in it (context.with).
   */
  traceContext: Context;
  /** Restart the ack timer. Called automatically every ack_wait/3 while the handler runs. */
  working(): void;
  /** Ack and wait for the server's confirmation (the task is then gone from the work queue). */
  ack(): Promise<void>;
  /** Redeliver after `delayMs` (to any replica). */
  nak(delayMs: number): void;
  /** Never redeliver (on a work queue: delete). No reason argument: 2.9/2.10 ignore term(reason). */
  term(): void;
}

export type TaskHandler = (delivery: TaskDelivery) => Promise<void>;

export interface TaskPullerOptions {
  agent: string;
  /** Tasks in flight at once in this replica; free slots are asked for, never more. */
  slots: number;
  /** Lifetime of one pull request on the server. Default 10 s (min 1 s). */
  expiresMs?: number;
  log?: Logger;
  /** Delay of the nak after a handler threw, by delivery count. Default 1 s, 2 s, 4 s ... 60 s. */
  nakDelayMs?: (deliveryCount: number) => number;
  /**
   * The event guard's check of each task_assigned before any handler sees it:
   * a refused one is dead-lettered with the reason, never run.
   */
  admit?: (
    event: SquadEvent,
    msg: ReceivedMessage,
  ) => { accept: true } | { accept: false; reason: string };
}

export interface TaskPuller {
  /**
   * Pull and handle tasks until stop(). A handler that returns without
   * settling acks the task; one that throws gets a nak with backoff, or on
   * the last delivery goes to the DLQ. Rejects if the connection closes
   * without stop() having been called.
   */
  run(handler: TaskHandler): Promise<void>;
  /** Stop pulling and wait for the in-flight handlers to finish. */
  stop(): Promise<void>;
  inFlight(): number;
}

const DEFAULT_EXPIRES_MS = 10_000;
const defaultNakDelay = (deliveryCount: number) => backoffDelay(deliveryCount, 1000, 60_000);

function hasMission(
  e: EventOf<"task_assigned">,
): e is EventOf<"task_assigned"> & { mission_id: string } {
  return typeof e.mission_id === "string" && e.mission_id.length > 0;
}

/**
 * The pull loop of a worker replica on the durable `worker-<agent>`. It holds
 * at most `slots` tasks, received or asked for: free slots are asked for in
 * one `fetch({ max_messages: <free slots> })`, so slots freed together share
 * one pull request, and a slot freed while other pulls wait gets a pull of
 * its own. Never consume(): it pre-fetches past the free slots, and a
 * buffered task's ack timer would run while it waits. Each fetch keeps a
 * handle so stop() can cancel it instead of waiting for it to expire.
 */
export function createTaskPuller(nc: NatsConnection, opts: TaskPullerOptions): TaskPuller {
  const agent = assertAgentName(opts.agent);
  if (!Number.isInteger(opts.slots) || opts.slots < 1) {
    throw new RangeError(`slots must be a positive integer, got ${opts.slots}`);
  }
  const expires = Math.max(1000, opts.expiresMs ?? DEFAULT_EXPIRES_MS);
  const log = (opts.log ?? silentLogger).child({ agent, consumer: workerDurable(agent) });
  const nakDelay = opts.nakDelayMs ?? defaultNakDelay;
  const js: JetStreamClient = jetstream(nc);
  const pulls = new Set<ConsumerMessages>();
  const stopController = new AbortController();
  let running: Promise<void> | null = null;
  /** Handlers running. */
  let inFlight = 0;
  /** Messages received and not yet finished with (handled, or dead-lettered): slots in use. */
  let held = 0;
  /** Messages asked for by outstanding pulls and not yet received: slots promised to them. */
  let reserved = 0;
  let wake: (() => void) | null = null;

  /** Something that frees or promises slots happened: the pull loop looks again. */
  const changed = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const nextChange = () => new Promise<void>((resolve) => (wake = resolve));

  const stopping = () => stopController.signal.aborted;

  /** Sleep, cut short by stop(). */
  async function pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: stopController.signal }).catch(() => undefined);
  }

  async function openConsumer(): Promise<Consumer | null> {
    for (let attempt = 1; !stopping(); attempt++) {
      try {
        return await js.consumers.get(STREAMS.tasks, workerDurable(agent));
      } catch (err) {
        if (!isTransientNatsError(err)) {
          const missing = hasJsCode(err, JS_CODES.consumerNotFound, JS_CODES.streamNotFound);
          throw new InfrastructureError(
            `can't pull tasks for ${agent}: ${(err as Error).message}`,
            missing
              ? `create the consumer first (ensureWorkerConsumer / \`swarm up\`): ${workerDurable(agent)} on ${STREAMS.tasks}`
              : undefined,
            { cause: err },
          );
        }
        const delay = backoffDelay(attempt, 250, 5000);
        log.warn({ err: (err as Error).message, delay }, "consumer not reachable yet; retrying");
        await pause(delay);
      }
    }
    return null;
  }

  /** Ends a pull here (the connection may be closed already: nothing to do then). */
  function closePull(p: ConsumerMessages): void {
    try {
      void p.close().catch(() => undefined);
    } catch {
      // closed with its connection
    }
  }

  /**
   * working/nak/term are fire-and-forget publishes that throw on a closed
   * connection; the server then redelivers after ack_wait, so a log line is all.
   */
  function protocol(send: () => void, what: string): void {
    try {
      send();
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        `could not send ${what}; the server will redeliver after ack_wait`,
      );
    }
  }

  async function deadLetter(m: JsMsg, reason: string): Promise<void> {
    const record = buildDlqRecord({
      reason,
      agent,
      subject: m.subject,
      streamSeq: m.info.streamSequence,
      deliveryCount: m.info.deliveryCount,
      data: m.data,
    });
    try {
      await publishDeadLetter(js, record);
    } catch (err) {
      // Keep the message: without its copy in the DLQ, terminating it would lose it.
      log.error(
        { err: (err as Error).message, seq: record.stream_seq },
        "could not dead-letter a message; retrying later",
      );
      protocol(() => m.nak(5000), "nak");
      return;
    }
    protocol(() => m.term(), "term");
    metrics.deadLettered(agent);
    log.warn({ seq: record.stream_seq, reason }, "message moved to the dead-letter queue");
  }

  async function handle(
    m: JsMsg,
    handler: TaskHandler,
    ackWaitMs: number,
    maxDeliver: number,
  ): Promise<void> {
    let event;
    try {
      event = decodeEvent(m.data);
    } catch (err) {
      return deadLetter(m, (err as Error).message);
    }
    if (event.type !== "task_assigned") {
      return deadLetter(
        m,
        `a ${event.type} event on ${m.subject}: only task_assigned belongs there`,
      );
    }
    if (event.payload.task.agent !== agent) {
      return deadLetter(
        m,
        `task ${event.payload.task.id} is for agent ${event.payload.task.agent}, not ${agent}`,
      );
    }
    const admission = opts.admit?.(event, m);
    if (admission && !admission.accept) {
      return deadLetter(m, `refused: ${admission.reason}`);
    }
    if (!hasMission(event)) {
      // The schema allows a null mission id on other events; a task without one is unusable.
      return deadLetter(m, `task ${event.payload.task.id} has no mission_id`);
    }
    const deliveryCount = m.info.deliveryCount;
    let settled = false;
    // working() after a nak would reset the nak's delay to a full ack_wait: stop ticking on settle.
    const ticker = setInterval(
      () => {
        if (!settled) protocol(() => m.working(), "working");
      },
      Math.max(100, Math.floor(ackWaitMs / 3)),
    );
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearInterval(ticker);
      return true;
    };
    const task = event.payload.task;
    // The attempt's span (child of the dispatch that sent it, from the message's traceparent).
    const attempt = startAttemptSpan({ mission_id: event.mission_id, task }, contextOf(m), {
      [SQUAD.deliveryCount]: deliveryCount,
    });
    const delivery: TaskDelivery = {
      event,
      traceContext: attempt.context,
      deliveryCount,
      maxDeliver,
      isLastDelivery: maxDeliver > 0 && deliveryCount >= maxDeliver,
      streamSeq: m.info.streamSequence,
      working: () => {
        if (!settled) protocol(() => m.working(), "working");
      },
      ack: async () => {
        if (!settle()) return;
        // ackAck on a closed connection would only fail after its timeout.
        if (nc.isClosed())
          throw new InfrastructureError(
            "NATS connection closed: ack not sent, the task will be redelivered",
          );
        await m.ackAck();
      },
      nak: (delayMs) => {
        if (settle()) protocol(() => m.nak(Math.max(0, delayMs)), "nak");
      },
      term: () => {
        if (settle()) protocol(() => m.term(), "term");
      },
    };
    inFlight++;
    metrics.taskStarted(agent);
    if (deliveryCount > 1) metrics.redelivered(agent);
    try {
      await handler(delivery);
      if (!settled) await delivery.ack();
    } catch (err) {
      attempt.span.recordException(err as Error);
      attempt.span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      if (!settled && delivery.isLastDelivery) {
        // A nak would leave it in the work queue for good: the server delivers it no more.
        settle();
        await deadLetter(
          m,
          `deliveries exhausted (${deliveryCount} of ${maxDeliver}); last error: ${(err as Error).message}`,
        );
      } else if (!settled) {
        const delay = nakDelay(deliveryCount);
        log.error(
          { err: (err as Error).message, task: task.id, deliveryCount, delay },
          "task handler failed; nak",
        );
        delivery.nak(delay);
      } else {
        log.error(
          { err: (err as Error).message, task: task.id, deliveryCount },
          "task handler failed after settling",
        );
      }
    } finally {
      settle();
      inFlight--;
      metrics.taskEnded(agent);
      attempt.span.end();
    }
  }

  /**
   * Keeps every slot either running a task or asked for in an outstanding
   * pull (held + reserved = slots), and never more: whenever slots are free
   * and not yet asked for, one pull asks for all of them at once.
   */
  async function pullLoop(
    consumer: Consumer,
    handler: TaskHandler,
    ackWaitMs: number,
    maxDeliver: number,
  ): Promise<void> {
    const handlers = new Set<Promise<void>>();
    const draining = new Set<Promise<void>>();
    let failures = 0;
    let retryAt = 0;
    /** The next pull waits, longer after each failure in a row. */
    const pullFailed = (err: unknown) => {
      failures++;
      const delay = backoffDelay(failures, 250, 5000);
      retryAt = Date.now() + delay;
      // "heartbeats missed", no responders, a consumer being recovered: a restart in progress.
      log.warn({ err: (err as Error).message, delay }, "pull failed; retrying");
    };

    const start = (m: JsMsg) => {
      held++;
      const h: Promise<void> = handle(m, handler, ackWaitMs, maxDeliver)
        .catch((err: unknown) => log.error({ err: (err as Error).message }, "task handling failed"))
        .finally(() => {
          held--;
          handlers.delete(h);
          changed();
        });
      handlers.add(h);
    };

    /** Hands the pull's messages to handlers as they come; gives back what it did not deliver. */
    async function drain(iter: ConsumerMessages, asked: number): Promise<void> {
      let received = 0;
      try {
        for await (const m of iter) {
          received++;
          reserved--;
          // Stopping: handed straight back for another replica.
          if (stopping()) protocol(() => m.nak(), "nak");
          else start(m);
        }
        failures = 0;
      } catch (err) {
        if (!stopping() && !nc.isClosed()) pullFailed(err);
      } finally {
        pulls.delete(iter);
        reserved -= asked - received;
        changed();
      }
    }

    while (!stopping() && !nc.isClosed()) {
      const want = opts.slots - held - reserved;
      if (want <= 0) {
        await nextChange();
        // Handlers that end in the same turn of the event loop free their slots first: one pull.
        await setImmediate();
        continue;
      }
      const wait = retryAt - Date.now();
      if (wait > 0) {
        await pause(wait);
        continue;
      }
      reserved += want;
      let iter: ConsumerMessages;
      try {
        iter = await consumer.fetch({ max_messages: want, expires });
      } catch (err) {
        reserved -= want;
        if (stopping() || nc.isClosed()) break;
        pullFailed(err);
        continue;
      }
      pulls.add(iter);
      if (stopping()) closePull(iter);
      const d: Promise<void> = drain(iter, want).finally(() => draining.delete(d));
      draining.add(d);
    }
    for (const p of pulls) closePull(p);
    await Promise.all(draining);
    await Promise.all(handlers);
  }

  return {
    run(handler) {
      if (running) return Promise.reject(new Error("run() was already called on this puller"));
      running = (async () => {
        const consumer = await openConsumer();
        if (!consumer) return;
        const info = await consumer.info(true);
        const ackWaitMs = Math.round((info.config.ack_wait ?? 30e9) / 1e6);
        const maxDeliver = info.config.max_deliver ?? -1;
        log.info({ slots: opts.slots, ackWaitMs, maxDeliver }, "pulling tasks");
        // A closed connection ends the pulls; the loop must also wake when no pull is out.
        void nc.closed().then(changed);
        // The pending gauges of /metrics read the consumer at each scrape.
        const unwatch = metrics.watchConsumer(agent, async () => {
          const i = await consumer.info();
          return { num_pending: i.num_pending, num_ack_pending: i.num_ack_pending };
        });
        try {
          await pullLoop(consumer, handler, ackWaitMs, maxDeliver);
        } finally {
          unwatch();
        }
        if (!stopping()) {
          throw new InfrastructureError(`NATS connection closed while pulling tasks for ${agent}`);
        }
      })();
      return running;
    },
    async stop() {
      stopController.abort();
      for (const p of pulls) closePull(p);
      changed();
      await running?.catch(() => undefined);
    },
    inFlight: () => inFlight,
  };
}
