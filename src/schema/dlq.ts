import { z } from "zod";
import { AgentName } from "./identifiers.ts";

/** Bytes of the original message kept in a dead-letter record. */
export const DLQ_DATA_LIMIT = 64 * 1024;

/**
 * What lands on `squad.dlq.<agent>` (stream SQUAD_DLQ): a message a worker could
 * not use (not JSON, schema-invalid, wrong type or agent), kept with enough
 * context to inspect and replay it by hand.
 */
export const DlqRecord = z.object({
  /** Why it was dead-lettered, e.g. "not JSON: Unexpected token ...". */
  reason: z.string().min(1),
  /** The consumer's agent (`worker-<agent>`) that refused it. */
  agent: AgentName,
  /** The subject the message was published on. */
  subject: z.string().min(1),
  /** Sequence in the source stream (SQUAD_TASKS or SQUAD_MISSIONS); Nats-Msg-Id `dlq-<source>-<agent>-<seq>`. */
  stream_seq: z.number().int().nonnegative(),
  delivery_count: z.number().int().nonnegative(),
  received_at: z.iso.datetime({ offset: true }),
  /** The original bytes as text, truncated to DLQ_DATA_LIMIT bytes. */
  data: z.string(),
  /** The original bytes (truncated likewise), present only when they are not valid UTF-8. */
  data_base64: z.string().optional(),
  /** Size of the original message when `data` was truncated. */
  original_bytes: z.number().int().nonnegative().optional(),
});
export type DlqRecord = z.infer<typeof DlqRecord>;
