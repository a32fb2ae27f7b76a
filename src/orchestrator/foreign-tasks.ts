/**
 * Messages on `squad.tasks.<agent>` for an agent nobody serves: not in the
 * roster, and no `worker-<agent>` durable exists (or the subject can't even
 * name an agent). SQUAD_TASKS is a work queue, so without this they would
 * wait there forever, unseen. The orchestrator moves them to the DLQ (like
 * any message a worker refuses), with the reason, and logs it.
 */
import { AckPolicy, DeliverPolicy, jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { buildDlqRecord, openJetStreamManager, publishDeadLetter } from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { isAgentName, STREAMS, subjects, workerDurable } from "../schema/index.ts";
import { hasJsCode, JS_CODES } from "../bus/index.ts";

const PREFIX = "squad.tasks.";

/** Why a task subject has no taker, or null when it has one (or may get one). */
export function foreignReason(subject: string, roster: readonly string[]): string | null {
  const agent = subject.slice(PREFIX.length);
  if (!isAgentName(agent)) {
    return `${JSON.stringify(agent)} is not an agent name, so no worker can ever take it`;
  }
  if (roster.includes(agent)) return null;
  return `no agent "${agent}" in the roster (${roster.join(", ")}): no worker will take it`;
}

async function hasDurable(jsm: JetStreamManager, agent: string): Promise<boolean> {
  try {
    await jsm.consumers.info(STREAMS.tasks, workerDurable(agent));
    return true;
  } catch (err) {
    if (hasJsCode(err, JS_CODES.consumerNotFound)) return false;
    throw err;
  }
}

/** One pass: dead-letter every message of a foreign task subject. Returns how many moved. */
export async function sweepForeignTasks(
  nc: NatsConnection,
  opts: { roster: readonly string[]; log: Logger },
): Promise<number> {
  const jsm = await openJetStreamManager(nc, { check: false });
  const info = await jsm.streams.info(STREAMS.tasks, { subjects_filter: subjects.allTasks });
  let moved = 0;
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const reason = foreignReason(subject, opts.roster);
    if (!reason) continue;
    const agent = subject.slice(PREFIX.length);
    // Someone runs workers for it with another roster: theirs to take.
    if (isAgentName(agent) && (await hasDurable(jsm, agent))) continue;
    moved += await deadLetterSubject(nc, jsm, subject, reason, opts.log);
  }
  return moved;
}

async function deadLetterSubject(
  nc: NatsConnection,
  jsm: JetStreamManager,
  subject: string,
  reason: string,
  log: Logger,
): Promise<number> {
  const js = jetstream(nc);
  // A work queue allows one consumer per subject: this one reads that subject only, briefly.
  const ci = await jsm.consumers.add(STREAMS.tasks, {
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(60_000),
  });
  let moved = 0;
  try {
    const consumer = await js.consumers.get(STREAMS.tasks, ci.name);
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 100, expires: 1000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        await publishDeadLetter(
          js,
          buildDlqRecord({
            agent: "orchestrator",
            reason,
            subject: m.subject,
            streamSeq: m.seq,
            deliveryCount: m.info.deliveryCount,
            data: m.data,
          }),
        );
        await m.ackAck(); // on a work queue: deleted
        moved++;
      }
      if (got === 0) break;
    }
  } finally {
    await jsm.consumers.delete(STREAMS.tasks, ci.name).catch(() => undefined);
  }
  if (moved) log.warn({ subject, count: moved, reason }, "tasks nobody can take moved to the DLQ");
  return moved;
}

/** Sweep now and every `everyMs`; stop() ends it. Failures are logged, never thrown. */
export function startForeignTaskSweeper(
  nc: NatsConnection,
  opts: { roster: readonly string[]; log: Logger; everyMs: number },
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const sweep = () => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        await sweepForeignTasks(nc, opts);
      } catch (err) {
        opts.log.warn({ err: errorMessage(err) }, "foreign task sweep failed; next round");
      }
    });
  };
  sweep();
  const timer = setInterval(sweep, opts.everyMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
