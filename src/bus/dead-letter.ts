import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { DLQ_DATA_LIMIT, DlqRecord, parseWith, subjects } from "../schema/index.ts";
import { DEFAULT_RETRY, retryTransient, type RetryPolicy } from "./retry.ts";

export interface DeadLetterInput {
  reason: string;
  agent: string;
  subject: string;
  streamSeq: number;
  deliveryCount: number;
  data: Uint8Array;
  now?: Date;
}

/** Build the record for a message a worker refused (pure). */
export function buildDlqRecord(input: DeadLetterInput): DlqRecord {
  const kept = input.data.subarray(0, DLQ_DATA_LIMIT);
  const truncated = input.data.length > DLQ_DATA_LIMIT;
  let validUtf8 = true;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(input.data);
  } catch {
    validUtf8 = false;
  }
  let text = new TextDecoder().decode(kept);
  // A cut inside a multi-byte character is not invalid UTF-8 of the original.
  if (validUtf8 && truncated) text = text.replace(/\uFFFD$/, "");
  const base64 = validUtf8 ? undefined : Buffer.from(kept).toString("base64");
  return parseWith(
    DlqRecord,
    {
      reason: input.reason.slice(0, 2000) || "unknown",
      agent: input.agent,
      subject: input.subject,
      stream_seq: input.streamSeq,
      delivery_count: input.deliveryCount,
      received_at: (input.now ?? new Date()).toISOString(),
      data: text,
      ...(base64 !== undefined ? { data_base64: base64 } : {}),
      ...(truncated ? { original_bytes: input.data.length } : {}),
    },
    "dead-letter record",
  );
}

/** Nats-Msg-Id of a dead letter: a retried copy of the same message is stored once. */
export function dlqMsgId(record: Pick<DlqRecord, "agent" | "subject" | "stream_seq">): string {
  // The source stream's sequence alone is not unique in SQUAD_DLQ: tasks and
  // submissions come from different streams.
  const source = record.subject.startsWith("squad.missions.") ? "missions" : "tasks";
  return `dlq-${source}-${record.agent}-${record.stream_seq}`;
}

/** Store a record on `squad.dlq.<agent>` (SQUAD_DLQ), retrying transient failures. */
export async function publishDeadLetter(
  js: JetStreamClient,
  record: DlqRecord,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<PubAck> {
  const data = new TextEncoder().encode(JSON.stringify(record));
  return retryTransient(
    () => js.publish(subjects.dlq(record.agent), data, { msgID: dlqMsgId(record) }),
    policy,
  );
}
