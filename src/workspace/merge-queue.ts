/**
 * The merge queue's policy, per mission (pure): which succeeded attempt is
 * integrated next, and how.
 *
 * - One at a time, FIFO in the order the results arrived (the mission
 *   machine's `merging` list, which resume rebuilds in the same order).
 * - Onto the head the events say (the machine's view), never a head of the
 *   queue's own: after publishing an answer the queue waits until the machine
 *   has applied it before the next integration, so a restart, a takeover or a
 *   lagging feed can never make it integrate onto a stale head.
 * - Fast-forward when the attempt's base is the head, else a rebase onto it.
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

export interface MergeQueue {
  /** Requests not yet answered, in arrival order. */
  requests: readonly MergeRequest[];
  /** The key being integrated now. */
  running: string | null;
  /** An answer published and not yet applied by the machine (still merging in its view). */
  answered: string | null;
}

export type MergeAction =
  /** Nothing to do until the view changes or an integration ends. */
  | { kind: "wait" }
  | { kind: "integrate"; request: MergeRequest; onto: string; fastForward: boolean };

export const EMPTY_QUEUE: MergeQueue = { requests: [], running: null, answered: null };

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
 * decision (dropped requests gone; `running` set when the action integrates).
 */
export function nextMerge(
  q: MergeQueue,
  view: MissionView,
): { queue: MergeQueue; action: MergeAction; dropped: MergeRequest[] } {
  const waiting = new Set(view.merging);
  const live =
    view.final || view.head === null ? [] : q.requests.filter((r) => waiting.has(keyOf(r)));
  const dropped = q.requests.filter((r) => !live.includes(r));
  let queue: MergeQueue = dropped.length ? { ...q, requests: live } : q;
  const wait = { queue, action: { kind: "wait" } as const, dropped };
  if (queue.running !== null) return wait;
  if (queue.answered !== null) {
    if (waiting.has(queue.answered) && !view.final) return wait;
    queue = { ...queue, answered: null };
  }
  // Strictly in finishing order: the first attempt the machine waits for goes first.
  const first = view.merging[0];
  const request = live.find((r) => keyOf(r) === first);
  if (!request || view.head === null) return { ...wait, queue };
  return {
    queue: { ...queue, running: first! },
    action: {
      kind: "integrate",
      request,
      onto: view.head,
      fastForward: request.base === view.head,
    },
    dropped,
  };
}

/**
 * The integration of `key` ended. `answered`: its task_merged or
 * task_conflicted was published (the request is done; wait for the machine
 * to apply it). Otherwise it failed before an answer and stays queued, to be
 * tried again.
 */
export function mergeEnded(q: MergeQueue, key: string, answered: boolean): MergeQueue {
  if (q.running !== key) return q;
  if (!answered) return { ...q, running: null };
  return { requests: q.requests.filter((r) => keyOf(r) !== key), running: null, answered: key };
}
