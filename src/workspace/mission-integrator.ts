/**
 * The orchestrator's merge queue, the imperative half (the policy is
 * merge-queue.ts, one pass's git is merge-chain.ts): for each mission, the
 * succeeded attempts waiting, in finishing order, put on the mission branch
 * in passes, and answered `task_merged` / `task_conflicted {reason, files}`,
 * one event per attempt in that order.
 *
 * The answers go out as orchestrator events and come back to the mission
 * machine through the event feed like every other event, in stream order.
 * The next pass need not wait for them (merge-queue.ts says when it may go
 * on, onto the head they lead to).
 */
import { rm, stat } from "node:fs/promises";
import path from "node:path";
import { backoffDelay } from "../backoff.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent, type SquadEvent } from "../schema/index.ts";
import { runShell } from "../tools/shell.ts";
import type { CommandGate } from "../tools/command-policy.ts";
import type { ShellSandbox } from "../tools/sandbox.ts";
import { truncateText } from "../tools/truncate.ts";
import type { BundleStore } from "./bundle-store.ts";
import {
  EMPTY_QUEUE,
  addRequest,
  mergeKey,
  nextMerge,
  passEnded,
  type MergeQueue,
  type MergeRequest,
  type MissionView,
  type PublishedAnswer,
} from "./merge-queue.ts";
import {
  integrateChain,
  type ChainStep,
  type IntegrationOutcome,
  type VerifyRunner,
} from "./merge-chain.ts";
import { MissionRepo } from "./mission-repo.ts";

export {
  MERGE_COMMITTER,
  attemptRef,
  branchRef,
  integrateAttempt,
  integrateChain,
  type IntegrationOutcome,
  type VerifyOutcome,
  type VerifyRunner,
} from "./merge-chain.ts";

/**
 * Verify with runShell, the sandbox of the task's agent and its command
 * policy (the ones its worker used). A command that needs a person's
 * approval is not run here (nobody is asked): the check fails, saying so.
 */
export function shellVerifier(
  sandboxFor: (agent: string) => Promise<ShellSandbox | undefined>,
  gateFor?: (agent: string) => CommandGate,
): VerifyRunner {
  return async (request, dir, signal) => {
    const sandbox = await sandboxFor(request.agent);
    const gate = gateFor?.(request.agent);
    for (const command of request.verify) {
      const admitted = gate ? await gate.admit(command, signal) : { run: true as const };
      if (!admitted.run) {
        return { ok: false, error: `verify \`${command}\` was not run: ${admitted.reason}` };
      }
      const r = await runShell({
        command,
        cwd: dir,
        timeoutMs: request.timeout_s * 1000,
        signal,
        ...(sandbox ? { sandbox } : {}),
      });
      if (r.aborted || signal.aborted)
        throw new Error("verification stopped: the orchestrator is stopping");
      if (r.exit_code !== 0 || r.timed_out || r.limit) {
        const how = r.limit
          ? `stopped: ${r.limit.message}`
          : r.timed_out
            ? "timed out"
            : `exited with code ${r.exit_code ?? "(killed)"}`;
        return {
          ok: false,
          error: `verify \`${command}\` ${how} on the merged tree: ${truncateText(r.output, 2000)}`,
        };
      }
    }
    return { ok: true, error: "" };
  };
}

// ---------------------------------------------------------------- the queue's driver

export interface MissionIntegratorOptions {
  /** The orchestrator's cache repositories: `<SWARM_WORKSPACE>/.squad/orchestrator-repos`. */
  cacheRoot: string;
  /** Private checkouts for verify: `<dir>/<mission>`. */
  checkoutRoot: string;
  /** The bundle store, opened on first use (missions without a workspace never need it). */
  store: () => Promise<BundleStore>;
  log: Logger;
  /** Publish an answer (task_merged / task_conflicted) on squad.coordination. */
  publish: (event: SquadEvent) => Promise<void>;
  verify: VerifyRunner;
  /** First retry delay after an integration failed on infrastructure. Default 1 s. */
  retryMs?: number;
  /** Tries before such a failure is answered as a conflict (a new attempt). Default 5. */
  maxTries?: number;
}

export interface MissionIntegrator {
  /** An integrate command; `view` reads the mission machine's state (head, merging). */
  request(missionId: string, request: MergeRequest, view: () => MissionView): void;
  /**
   * The machine's view of the mission changed: maybe the next integration can
   * start. With `view`, a mission with a workspace and nothing queued yet gets
   * its cache ready (the bundle store opened, the head fetched) while its
   * first tasks run, not on its first merge's path.
   */
  poke(missionId: string, view?: () => MissionView): void;
  /** The work running for the mission (a pass, or readying its cache) is over (for tests). */
  settled(missionId: string): Promise<void>;
  /** This process no longer drives the mission: drop its queue; a running integration publishes nothing. */
  forget(missionId: string): void;
  /** Stop: no new integration; running ones are aborted (nothing published) and awaited. */
  stop(): Promise<void>;
  /** Integrations running now (for tests and status). */
  running(): number;
}

interface Entry {
  queue: MergeQueue;
  view: () => MissionView;
  tries: Map<string, number>;
  timer: NodeJS.Timeout | null;
}

export function createMissionIntegrator(opts: MissionIntegratorOptions): MissionIntegrator {
  const { log } = opts;
  const entries = new Map<string, Entry>();
  /** Per mission, the pass running (possibly of a forgotten entry: the next waits for it). */
  const jobs = new Map<string, Promise<void>>();
  const stopper = new AbortController();
  const retryMs = opts.retryMs ?? 1000;
  const maxTries = opts.maxTries ?? 5;

  /** Missions whose cache was readied (once each, see poke). */
  const readied = new Set<string>();

  async function ready(missionId: string, head: string): Promise<void> {
    try {
      const repo = await MissionRepo.open(opts.cacheRoot, missionId, await opts.store());
      await repo.ensure(head);
    } catch (err) {
      // Only a head start: the first pass does the same and reports what fails.
      log.debug({ mission: missionId, err: errorMessage(err) }, "could not ready the cache");
    }
  }

  function pump(missionId: string): void {
    const entry = entries.get(missionId);
    if (!entry || stopper.signal.aborted || entry.timer) return;
    const previous = jobs.get(missionId);
    if (previous) {
      if (entry.queue.running.length === 0) void previous.then(() => pump(missionId));
      return;
    }
    const r = nextMerge(entry.queue, entry.view());
    entry.queue = r.queue;
    for (const d of r.dropped) entry.tries.delete(mergeKey(d.task_id, d.attempt));
    if (r.action.kind !== "integrate") return;
    const { requests, onto } = r.action;
    const job = runPass(missionId, entry, requests, onto).finally(() => {
      if (jobs.get(missionId) === job) jobs.delete(missionId);
    });
    jobs.set(missionId, job);
  }

  async function runPass(
    missionId: string,
    entry: Entry,
    requests: MergeRequest[],
    onto: string,
  ): Promise<void> {
    const mlog = log.child({ mission: missionId });
    const live = () => !stopper.signal.aborted && entries.get(missionId) === entry;
    const answers: PublishedAnswer[] = [];
    let retry: string | null = null;
    try {
      const repo = await MissionRepo.open(opts.cacheRoot, missionId, await opts.store());
      const chain = await integrateChain(repo, requests, onto, {
        checkoutDir: path.join(opts.checkoutRoot, missionId),
        verify: opts.verify,
        signal: stopper.signal,
      });
      const steps: ChainStep[] = chain.steps;
      if (chain.error !== undefined) {
        if (!live()) return;
        const failed = requests[steps.length]!;
        const key = mergeKey(failed.task_id, failed.attempt);
        const tries = (entry.tries.get(key) ?? 0) + 1;
        entry.tries.set(key, tries);
        if (tries < maxTries) {
          retry = key;
          mlog.error(
            { task: failed.task_id, attempt: failed.attempt, err: errorMessage(chain.error) },
            "integration failed; it will be tried again",
          );
        } else {
          // Given up: a new attempt (on the head) is the way on, not a mission stuck merging.
          steps.push({
            request: failed,
            onto: headAfter(steps, onto),
            outcome: {
              kind: "conflicted",
              reason: "conflict",
              files: [],
              error: `could not be integrated after ${tries} tries: ${errorMessage(chain.error)}`,
            },
          });
        }
      }
      // In order, each acknowledged before the next: the machine applies them in this order.
      for (const step of steps) {
        if (!live()) return;
        const { request, outcome } = step;
        await opts.publish(answerEvent(missionId, request, step.onto, outcome));
        const key = mergeKey(request.task_id, request.attempt);
        answers.push({ key, onto: step.onto, head: headAfter([step], step.onto) });
        const slog = mlog.child({ task: request.task_id, attempt: request.attempt });
        if (outcome.kind === "merged") {
          slog.info(
            { merged: outcome.merged, onto: step.onto, fast_forward: outcome.fastForward },
            "task merged",
          );
        } else {
          slog.warn(
            { reason: outcome.reason, files: outcome.files, error: outcome.error },
            "task conflicted",
          );
        }
      }
    } catch (err) {
      if (!live()) return;
      const next = requests.find(
        (r) => !answers.some((a) => a.key === mergeKey(r.task_id, r.attempt)),
      );
      if (next) retry = mergeKey(next.task_id, next.attempt);
      mlog.error({ err: errorMessage(err) }, "integration failed; it will be tried again");
    } finally {
      entry.queue = passEnded(entry.queue, answers);
      if (retry && live()) {
        const delay = backoffDelay(entry.tries.get(retry) ?? 1, retryMs, 30_000);
        entry.timer = setTimeout(() => {
          entry.timer = null;
          pump(missionId);
        }, delay);
        entry.timer.unref?.();
      }
    }
    // The next pass may go on before the answers come back (merge-queue.ts decides).
    queueMicrotask(() => pump(missionId));
  }

  return {
    request(missionId, request, view) {
      let entry = entries.get(missionId);
      if (!entry) {
        entry = { queue: EMPTY_QUEUE, view, tries: new Map(), timer: null };
        entries.set(missionId, entry);
      }
      entry.view = view;
      entry.queue = addRequest(entry.queue, request);
      pump(missionId);
    },
    poke(missionId, view) {
      if (view && !entries.has(missionId) && !jobs.has(missionId) && !readied.has(missionId)) {
        const v = view();
        if (v.head !== null && !v.final && !stopper.signal.aborted) {
          readied.add(missionId);
          const job = ready(missionId, v.head).finally(() => {
            if (jobs.get(missionId) === job) jobs.delete(missionId);
          });
          jobs.set(missionId, job);
        }
      }
      pump(missionId);
    },
    settled: (missionId) => (jobs.get(missionId) ?? Promise.resolve()).catch(() => undefined),
    forget(missionId) {
      readied.delete(missionId);
      const entry = entries.get(missionId);
      if (entry?.timer) clearTimeout(entry.timer);
      entries.delete(missionId);
      // The branch lives in the bundle store: this cache goes once its last merge is over.
      void (jobs.get(missionId) ?? Promise.resolve())
        .catch(() => undefined)
        .then(async () => {
          if (entries.has(missionId)) return;
          // A mission that never had a cache here (no workspace, nothing merged) has nothing to remove.
          const gitDir = path.join(path.resolve(opts.cacheRoot), `${missionId}.git`);
          if (!(await stat(gitDir).catch(() => null))) return;
          const repo = await MissionRepo.open(opts.cacheRoot, missionId, await opts.store());
          await repo.remove();
          await rm(path.join(opts.checkoutRoot, missionId), { recursive: true, force: true });
        })
        .catch((err: unknown) =>
          log.warn(
            { mission: missionId, err: errorMessage(err) },
            "could not remove the mission's cache",
          ),
        );
    },
    running: () => jobs.size,
    async stop() {
      stopper.abort("the orchestrator is stopping");
      for (const e of entries.values()) if (e.timer) clearTimeout(e.timer);
      entries.clear();
      await Promise.all([...jobs.values()].map((j) => j.catch(() => undefined)));
    },
  };
}

/** The head after these steps, from `onto`. */
function headAfter(steps: readonly ChainStep[], onto: string): string {
  let head = onto;
  for (const s of steps) if (s.outcome.kind === "merged") head = s.outcome.head;
  return head;
}

/** The event answering one integration (deterministic id: a repeat is deduplicated). */
export function answerEvent(
  missionId: string,
  request: MergeRequest,
  onto: string,
  outcome: IntegrationOutcome,
): SquadEvent {
  const envelope = {
    mission_id: missionId,
    task_id: request.task_id,
    source: "orchestrator",
  };
  const prefix = `${missionId}.${request.task_id}.${request.attempt}`;
  if (outcome.kind === "merged") {
    return makeEvent(
      "task_merged",
      { ...envelope, id: `${prefix}.merged` },
      {
        attempt: request.attempt,
        commit: request.commit,
        merged: outcome.merged,
        onto,
        head: outcome.head,
        fast_forward: outcome.fastForward,
      },
    );
  }
  return makeEvent(
    "task_conflicted",
    { ...envelope, id: `${prefix}.conflicted` },
    {
      attempt: request.attempt,
      commit: request.commit,
      onto,
      reason: outcome.reason,
      files: outcome.files,
      error: outcome.error,
    },
  );
}
