/**
 * The benchmarks' stopwatch: one core subscription on `squad.>` that notes
 * when each event went past (performance.now() of this process), so every
 * interval is measured by one clock in one place. It reads only the envelope
 * fields it needs (a small zod schema, not the full event union) to keep the
 * observer's own CPU cost low on a two-core machine.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import { ALL_SUBJECTS } from "../schema/index.ts";

const ProbeEnvelope = z.object({
  type: z.string(),
  mission_id: z.string().nullable(),
  task_id: z.string().nullable(),
  payload: z
    .object({
      attempt: z.number().optional(),
      agent: z.string().optional(),
      worker: z.string().optional(),
      result: z.object({ status: z.string() }).optional(),
      reason: z.string().optional(),
      fast_forward: z.boolean().optional(),
    })
    .optional(),
});

export interface ProbeRecord {
  /** performance.now() when the message arrived here. */
  at: number;
  type: string;
  subject: string;
  missionId: string | null;
  taskId: string | null;
  attempt: number | null;
  agent: string | null;
  /** task_started: the replica that started it (`<agent>/<instance>`). */
  worker: string | null;
  /** task_completed / task_failed: the result's status. */
  status: string | null;
  /** mission_failed / mission_cancelled: why. */
  reason: string | null;
  /** task_merged: a fast-forward (true) or a rebase (false). */
  fastForward: boolean | null;
}

export interface EventProbe {
  records: ProbeRecord[];
  /** Messages that were not an envelope (should stay 0). */
  invalid(): number;
  /** Resolves once `done(records)` holds; rejects after timeoutMs naming `what`. */
  waitUntil(
    done: (records: ProbeRecord[]) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<void>;
  /** The first record matching, waiting for it. */
  waitFor(
    match: (r: ProbeRecord) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<ProbeRecord>;
  /** Forget what was seen (between measurements). */
  clear(): void;
  stop(): Promise<void>;
}

export async function startEventProbe(nc: NatsConnection): Promise<EventProbe> {
  const records: ProbeRecord[] = [];
  let invalid = 0;
  const waiters = new Set<() => void>();
  const decoder = new TextDecoder();
  const sub: Subscription = nc.subscribe(ALL_SUBJECTS, {
    callback: (err, msg) => {
      const at = performance.now();
      if (err) return;
      let parsed;
      try {
        parsed = ProbeEnvelope.safeParse(JSON.parse(decoder.decode(msg.data)));
      } catch {
        parsed = null;
      }
      if (!parsed?.success) {
        invalid++;
        return;
      }
      const e = parsed.data;
      records.push({
        at,
        type: e.type,
        subject: msg.subject,
        missionId: e.mission_id,
        taskId: e.task_id,
        attempt: e.payload?.attempt ?? null,
        agent: e.payload?.agent ?? null,
        worker: e.payload?.worker ?? null,
        status: e.payload?.result?.status ?? null,
        reason: e.payload?.reason ?? null,
        fastForward: e.payload?.fast_forward ?? null,
      });
      for (const w of [...waiters]) w();
    },
  });
  await nc.flush();

  const waitUntil = (
    done: (records: ProbeRecord[]) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<void> =>
    new Promise((resolve, reject) => {
      if (done(records)) return resolve();
      const check = () => {
        if (!done(records)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
    });

  return {
    records,
    invalid: () => invalid,
    waitUntil,
    async waitFor(match, what, timeoutMs) {
      let found: ProbeRecord | undefined;
      let scanned = 0;
      await waitUntil(
        (rs) => {
          // Only the records that arrived since the last look: O(n) over a whole run.
          for (; found === undefined && scanned < rs.length; scanned++) {
            if (match(rs[scanned]!)) found = rs[scanned];
          }
          return found !== undefined;
        },
        what,
        timeoutMs,
      );
      return found!;
    },
    clear() {
      records.length = 0;
    },
    async stop() {
      waiters.clear();
      if (!sub.isClosed()) sub.unsubscribe();
    },
  };
}
