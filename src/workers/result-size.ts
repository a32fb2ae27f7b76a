import type { Step, TaskResult, VerificationCheck } from "../schema/index.ts";
import { truncateText } from "../tools/truncate.ts";

/**
 * What a worker publishes must fit the NATS server's max_payload (1 MiB by
 * default, 8 MiB in the shipped nats.conf, whatever a user's server says):
 * a result over it can never be published, so its attempt was redelivered
 * until the deliveries ran out and the mission ended only by its timeout.
 * Pure: sizes in, a result or step that fits (or the reason it can not) out.
 */

/** nats-server's own default, used when the connection has not said (no INFO yet). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Kept free for the message headers (Nats-Msg-Id, Squad-Type, Squad-Mission, the ~200 bytes of Squad-Signer/Squad-Signature) and slack. */
export const HEADER_ALLOWANCE = 1024;

/** How hard one level cuts: string caps in bytes, and how many steps/checks are kept at each end. */
interface Level {
  text: number;
  arg: number;
  output: number;
  /** Steps (and checks) kept at the start and at the end; null: all. */
  keep: number | null;
}

/** Changed files listed per step kept, at the levels that drop steps. */
const FILES_PER_KEPT_STEP = 50;

/** Tried in order until the result fits; the first is "as it is". */
const LEVELS: readonly (Level | null)[] = [
  null,
  { text: 8192, arg: 2048, output: 4096, keep: null },
  { text: 2048, arg: 512, output: 1024, keep: 20 },
  { text: 512, arg: 128, output: 256, keep: 5 },
  { text: 512, arg: 0, output: 0, keep: 0 },
];

export type FitResult =
  { ok: true; result: TaskResult; cut: boolean } | { ok: false; bytes: number; limit: number };

/**
 * `result`, cut as little as it takes for its JSON to be at most `budget`
 * bytes: long strings first (head and tail kept, with a visible note), then
 * the middle of the step and check lists (every step also went out in its
 * own task_progress event). A cut result says so at the end of its summary.
 */
export function fitResult(result: TaskResult, budget: number): FitResult {
  let bytes = jsonBytes(result);
  if (bytes <= budget) return { ok: true, result, cut: false };
  for (const level of LEVELS) {
    if (!level) continue;
    const cut = cutResult(result, level);
    bytes = jsonBytes(cut);
    if (bytes <= budget) return { ok: true, result: cut, cut: true };
  }
  return { ok: false, bytes: jsonBytes(result), limit: budget };
}

/** One step for a task_progress event, at most `budget` bytes of JSON; null if it can not be. */
export function fitStep(step: Step, budget: number): Step | null {
  if (jsonBytes(step) <= budget) return step;
  for (const level of LEVELS) {
    if (!level) continue;
    const cut = cutStep(step, level);
    if (jsonBytes(cut) <= budget) return cut;
  }
  return null;
}

/**
 * The bytes left for the part of an event that `fit*` shrinks: the server's
 * limit, less the headers' allowance and the rest of the event's JSON.
 */
export function payloadBudget(maxPayload: number | undefined, restOfEventBytes: number): number {
  return (maxPayload ?? DEFAULT_MAX_PAYLOAD) - HEADER_ALLOWANCE - restOfEventBytes;
}

/**
 * The small failed result sent instead of one that can not fit at all: the
 * task fails at once, with the reason, and is not retried (a new attempt
 * would make the same result).
 */
export function oversizedResult(result: TaskResult, bytes: number, maxPayload: number): TaskResult {
  const reason =
    `the task's result (${bytes} bytes of JSON) does not fit the NATS server's max_payload ` +
    `(${maxPayload} bytes), even cut down: its steps are in its task_progress events`;
  return {
    status: "failed",
    summary: reason,
    error: reason,
    steps: [],
    verification: [],
    usage: result.usage,
    attempt: result.attempt,
    duration_ms: result.duration_ms,
    worker: result.worker,
    retryable: false,
  };
}

function cutResult(r: TaskResult, level: Level): TaskResult {
  const steps = keepEnds(r.steps, level.keep).map((s) => cutStep(s, level));
  const verification = keepEnds(r.verification, level.keep).map((v) => cutCheck(v, level));
  const dropped = r.steps.length - steps.length;
  const droppedChecks = r.verification.length - verification.length;
  // The commit and its totals always stay (the orchestrator merges by them); the file list may go.
  const changes =
    r.changes && level.keep !== null
      ? { ...r.changes, files: r.changes.files.slice(0, level.keep * FILES_PER_KEPT_STEP) }
      : r.changes;
  const droppedFiles = (r.changes?.files.length ?? 0) - (changes?.files.length ?? 0);
  const note =
    `[result cut to fit the NATS payload limit` +
    (dropped > 0 ? `: ${steps.length} of ${r.steps.length} steps kept` : "") +
    (droppedChecks > 0 ? `, ${verification.length} of ${r.verification.length} checks kept` : "") +
    (droppedFiles > 0
      ? `, ${changes!.files.length} of ${r.changes!.files.length} changed files listed`
      : "") +
    "]";
  return {
    ...r,
    summary: `${truncateText(r.summary, level.text)}\n${note}`,
    ...(r.error !== undefined ? { error: truncateText(r.error, level.text) } : {}),
    steps,
    verification,
    ...(changes ? { changes } : {}),
  };
}

function cutStep(s: Step, level: Level): Step {
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.args)) {
    if (typeof v === "string") args[k] = truncateText(v, level.arg);
    else if (level.arg === 0) continue;
    else args[k] = jsonBytes(v) <= level.arg ? v : "[cut]";
  }
  return { ...s, args, output: truncateText(s.output, level.output) };
}

function cutCheck(v: VerificationCheck, level: Level): VerificationCheck {
  return {
    ...v,
    command: truncateText(v.command, Math.max(level.arg, 64)),
    output: truncateText(v.output, level.output),
  };
}

function keepEnds<T>(items: readonly T[], keep: number | null): T[] {
  if (keep === null || items.length <= keep * 2) return [...items];
  return [...items.slice(0, keep), ...items.slice(items.length - keep)];
}

export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}
