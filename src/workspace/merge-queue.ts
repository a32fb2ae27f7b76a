/**
 * The merge queue's policy, per mission (pure): which succeeded attempts are
 * integrated next, and onto which head.
 *
 * - In the order the results arrived (the mission machine's `merging` list,
 *   which resume rebuilds in the same order), strictly: a pass takes the
 *   waiting attempts from the front of that list, as many as have come
 *   (up to `maxBatch`), and integrates them one after the other, each onto
 *   the head the one before made. One pass at a time per mission.
 * - Onto the head the events say: the machine's head, or, while answers this
 *   queue published are not yet applied by the machine, the head those
 *   answers lead to, but only when they are consistent with the machine (the
 *   first answer not applied is onto the machine's head; the answers are
 *   published in order, so the machine applies them in that order). Else
 *   the queue waits until the machine applied them all. So the next pass
 *   need not wait for the feed, and a restart, a takeover or a lagging feed
 *   can still never make it integrate onto a head the events do not lead to
 *   (and the machine refuses a merge onto another head than its own).
 * - Idempotent: a request already queued is not queued twice, and a request
 *   the machine no longer waits for (merged, conflicted, the mission ended) is
 *   dropped, so the integrate commands a resume repeats are harmless.
 */

/** One succeeded attempt waiting to be integrated (from the machine's integrate command). */
export interface MergeRequest {
  task_id: string;
  attempt: number;
  agent: string;
  /** The attempt's base and its commit (result.changes). */
  base: string;
  commit: string;
  /** Run again on the merged tree of a rebase. */
  verify: string[];
  timeout_s: number;
}

/** What the mission's events say, as the machine has applied them. */
export interface MissionView {
  /** The mission branch's head; null: the mission has no workspace. */
  head: string | null;
  /** Keys (mergeKey) of the attempts in the merging state, in finishing order. */
  merging: readonly string[];
  /** The mission ended: nothing more is integrated. */
  final: boolean;
}

/** An answer (task_merged / task_conflicted) this queue published. */
export interface PublishedAnswer {
  key: string;
  onto: string;
  /** The head after it: the merged commit, or `onto` for a conflict. */
  head: string;
}

export interface MergeQueue {
  /** Requests not yet answered, in arrival order. */
  requests: readonly MergeRequest[];
  /** The keys of the pass running now, in order (empty: none runs). */
  running: readonly string[];
  /** Answers published, in order, that the machine has not applied yet (still merging in its view). */
  answered: readonly PublishedAnswer[];
}

export type MergeAction =
  /** Nothing to do until the view changes or a pass ends. */
  | { kind: "wait" }
  /** Integrate `requests` in this order, the first onto `onto`, each next onto the head before it. */
  | { kind: "integrate"; requests: MergeRequest[]; onto: string };

export const EMPTY_QUEUE: MergeQueue = { requests: [], running: [], answered: [] };

/** Attempts integrated in one pass at most (their answers go out together). */
export const MAX_BATCH = 16;

export function mergeKey(taskId: string, attempt: number): string {
  return `${taskId}#${attempt}`;
}

const keyOf = (r: MergeRequest) => mergeKey(r.task_id, r.attempt);

/** Queue a request; one already queued (or being integrated) is kept as it is. */
export function addRequest(q: MergeQueue, request: MergeRequest): MergeQueue {
  const key = keyOf(request);
  if (q.requests.some((r) => keyOf(r) === key)) return q;
  return { ...q, requests: [...q.requests, request] };
}

/**
 * The next step given the machine's view. `queue` is the queue after the
 * decision (dropped requests and applied answers gone; `running` set when
 * the action integrates).
 */
export function nextMerge(
  q: MergeQueue,
  view: MissionView,
  maxBatch = MAX_BATCH,
): { queue: MergeQueue; action: MergeAction; dropped: MergeRequest[] } {
  const waiting = new Set(view.merging);
  const over = view.final || view.head === null;
  const live = over ? [] : q.requests.filter((r) => waiting.has(keyOf(r)));
  const dropped = q.requests.filter((r) => !live.includes(r));
  const answered = over ? [] : q.answered.filter((a) => waiting.has(a.key));
  let queue: MergeQueue =
    dropped.length || answered.length !== q.answered.length
      ? { ...q, requests: live, answered }
      : q;
  const wait = { queue, action: { kind: "wait" } as const, dropped };
  if (queue.running.length > 0 || view.head === null || over) return wait;
  // Answers not applied yet must continue the machine's head, else wait until all are applied.
  if (answered.length > 0 && answered[0]!.onto !== view.head) return wait;
  const onto = answered.at(-1)?.head ?? view.head;
  const pending = new Set(answered.map((a) => a.key));
  const batch: MergeRequest[] = [];
  for (const key of view.merging) {
    if (pending.has(key)) continue;
    const request = live.find((r) => keyOf(r) === key);
    // Strictly in finishing order: one whose request has not come yet stops the pass there.
    if (!request || batch.length >= maxBatch) break;
    batch.push(request);
  }
  if (batch.length === 0) return wait;
  queue = { ...queue, running: batch.map(keyOf) };
  return { queue, action: { kind: "integrate", requests: batch, onto }, dropped };
}

/**
 * A pass ended. `answers`: the task_merged / task_conflicted it published, in
 * order (those requests are done; the machine will apply them). The others
 * of the pass failed before an answer and stay queued, to be tried again.
 */
export function passEnded(q: MergeQueue, answers: readonly PublishedAnswer[]): MergeQueue {
  if (q.running.length === 0) return q;
  const done = new Set(answers.map((a) => a.key));
  return {
    requests: q.requests.filter((r) => !done.has(keyOf(r))),
    running: [],
    answered: [...q.answered, ...answers],
  };
}
