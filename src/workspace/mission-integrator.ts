/**
 * The orchestrator's merge queue, the imperative half (the policy is
 * merge-queue.ts): for each mission, one succeeded attempt at a time, in
 * finishing order, its commit is put on the mission branch.
 *
 * An integration is git only, in the orchestrator's cache repository of the
 * mission (`<cacheRoot>/<mission>.git`): fetch the attempt's commit
 * (MissionRepo.ensure), then a fast-forward when its base is the head, else a
 * cherry-pick onto the head (merge-tree.ts: no working tree). A conflict is
 * answered `task_conflicted {reason: "conflict", files}`. A clean rebase of a
 * task with `verify` checks out the merged tree in a private directory and
 * runs those commands there, with the sandbox of the task's agent, and
 * nothing else of the task: failing, `task_conflicted {reason:
 * "verify_failed"}`. Clean: the merged commit's bundle is published (so
 * every replica can fetch the new head) BEFORE `task_merged`.
 *
 * The rebased commit keeps the attempt's author, message and trailers; the
 * committer is the orchestrator, with the attempt's own commit date, so
 * integrating the same attempt onto the same head again (after a crash
 * between the merge and its event) makes the very same commit.
 *
 * The answers go out as orchestrator events and come back to the mission
 * machine through the event feed like every other event, in stream order.
 * The cache repository keeps the branch as `refs/heads/squad/<mission>` and
 * each attempt's commit as `refs/squad/<task>/<attempt>`.
 */
import { mkdir, rm, stat } from "node:fs/promises";
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
import { gitSucceeds, runGitRaw } from "./git-command.ts";
import {
  EMPTY_QUEUE,
  addRequest,
  mergeEnded,
  mergeKey,
  nextMerge,
  type MergeQueue,
  type MergeRequest,
  type MissionView,
} from "./merge-queue.ts";
import { mergeTrees } from "./merge-tree.ts";
import { MissionRepo } from "./mission-repo.ts";

export type IntegrationOutcome =
  | { kind: "merged"; merged: string; head: string; fastForward: boolean }
  | { kind: "conflicted"; reason: "conflict" | "verify_failed"; files: string[]; error: string };

export interface VerifyOutcome {
  ok: boolean;
  error: string;
}

/** Runs a task's verify commands in `dir` (the merged tree). Throws when stopped (`signal`). */
export type VerifyRunner = (
  request: MergeRequest,
  dir: string,
  signal: AbortSignal,
) => Promise<VerifyOutcome>;

/** The committer of rebased commits. */
export const MERGE_COMMITTER = { name: "squad-orchestrator", email: "orchestrator@squad.local" };

export function branchRef(missionId: string): string {
  return `refs/heads/squad/${missionId}`;
}

export function attemptRef(taskId: string, attempt: number): string {
  return `refs/squad/${taskId}/${attempt}`;
}

/**
 * Integrate one attempt's commit onto `onto` (git only; publishes the merged
 * commit's bundle when clean). Answers; throws only on infrastructure
 * trouble (a bundle not in the store, git failing), which is worth a retry.
 */
export async function integrateAttempt(
  repo: MissionRepo,
  request: MergeRequest,
  onto: string,
  opts: { checkoutDir: string; verify: VerifyRunner; signal: AbortSignal },
): Promise<IntegrationOutcome> {
  await repo.ensure(request.commit);
  await repo.ensure(onto);
  await repo.setRef(attemptRef(request.task_id, request.attempt), request.commit);
  const parent = await repo.git(["rev-parse", "--verify", `${request.commit}^`]);
  let merged: string;
  const fastForward = parent === onto;
  if (fastForward) {
    merged = request.commit;
  } else {
    if (
      !(await gitSucceeds(["merge-base", "--is-ancestor", parent, onto], { gitDir: repo.gitDir }))
    ) {
      return {
        kind: "conflicted",
        reason: "conflict",
        files: [],
        error: `its base ${parent} is not on the mission branch (head ${onto})`,
      };
    }
    const m = await mergeTrees(repo.gitDir, onto, request.commit);
    if (!m.clean) {
      return {
        kind: "conflicted",
        reason: "conflict",
        files: m.files,
        error: m.conflicts.join("; ") || `conflicting changes in ${m.files.join(", ")}`,
      };
    }
    merged = await recommit(repo, request.commit, m.tree, onto);
    if (request.verify.length > 0) {
      const v = await verifyTree(repo, merged, request, opts);
      if (!v.ok) return { kind: "conflicted", reason: "verify_failed", files: [], error: v.error };
    }
  }
  await repo.publish(merged, [onto]);
  await repo.setRef(branchRef(repo.missionId), merged);
  return { kind: "merged", merged, head: merged, fastForward };
}

/** `commit`'s author, date and message on `tree` with parent `onto`; the orchestrator commits it. */
async function recommit(repo: MissionRepo, commit: string, tree: string, onto: string) {
  const raw = await runGitRaw(["cat-file", "commit", commit], { gitDir: repo.gitDir });
  const split = raw.indexOf("\n\n");
  const header = split < 0 ? raw : raw.slice(0, split);
  const message = split < 0 ? "" : raw.slice(split + 2);
  const author = /^author (.*) <([^>]*)> (\d+) ([+-]\d{4})$/m.exec(header);
  const committed = /^committer .* <[^>]*> (\d+) ([+-]\d{4})$/m.exec(header);
  if (!author || !committed)
    throw new Error(`commit ${commit} has no readable author or committer`);
  return repo.git(["commit-tree", tree, "-p", onto], {
    input: message,
    env: {
      GIT_AUTHOR_NAME: author[1]!,
      GIT_AUTHOR_EMAIL: author[2]!,
      GIT_AUTHOR_DATE: `@${author[3]} ${author[4]}`,
      GIT_COMMITTER_NAME: MERGE_COMMITTER.name,
      GIT_COMMITTER_EMAIL: MERGE_COMMITTER.email,
      GIT_COMMITTER_DATE: `@${committed[1]} ${committed[2]}`,
    },
  });
}

/** The merged tree in a fresh private directory, the task's verify commands run there, removed. */
async function verifyTree(
  repo: MissionRepo,
  merged: string,
  request: MergeRequest,
  opts: { checkoutDir: string; verify: VerifyRunner; signal: AbortSignal },
): Promise<VerifyOutcome> {
  const dir = opts.checkoutDir;
  const indexFile = path.join(repo.gitDir, "squad-index", "orchestrator-merge");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await mkdir(path.dirname(indexFile), { recursive: true });
  await rm(indexFile, { force: true });
  try {
    await repo.git(["read-tree", "--reset", "-u", merged], { workTree: dir, indexFile });
    return await opts.verify(request, dir, opts.signal);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(indexFile, { force: true });
  }
}

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
  /** The machine's view of the mission changed: maybe the next integration can start. */
  poke(missionId: string): void;
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
  /** Per mission, the integration running (possibly of a forgotten entry: the next waits for it). */
  const jobs = new Map<string, Promise<void>>();
  const stopper = new AbortController();
  const retryMs = opts.retryMs ?? 1000;
  const maxTries = opts.maxTries ?? 5;

  function pump(missionId: string): void {
    const entry = entries.get(missionId);
    if (!entry || stopper.signal.aborted || entry.timer) return;
    const previous = jobs.get(missionId);
    if (previous) {
      if (entry.queue.running === null) void previous.then(() => pump(missionId));
      return;
    }
    const r = nextMerge(entry.queue, entry.view());
    entry.queue = r.queue;
    for (const d of r.dropped) entry.tries.delete(mergeKey(d.task_id, d.attempt));
    if (r.action.kind !== "integrate") return;
    const { request, onto } = r.action;
    const job = integrate(missionId, entry, request, onto).finally(() => {
      if (jobs.get(missionId) === job) jobs.delete(missionId);
    });
    jobs.set(missionId, job);
  }

  async function integrate(
    missionId: string,
    entry: Entry,
    request: MergeRequest,
    onto: string,
  ): Promise<void> {
    const key = mergeKey(request.task_id, request.attempt);
    const mlog = log.child({ mission: missionId, task: request.task_id, attempt: request.attempt });
    let answered = false;
    let retry = false;
    try {
      const repo = await MissionRepo.open(opts.cacheRoot, missionId, await opts.store());
      let outcome: IntegrationOutcome;
      try {
        outcome = await integrateAttempt(repo, request, onto, {
          checkoutDir: path.join(opts.checkoutRoot, missionId),
          verify: opts.verify,
          signal: stopper.signal,
        });
      } catch (err) {
        if (stopper.signal.aborted || entries.get(missionId) !== entry) throw err;
        const tries = (entry.tries.get(key) ?? 0) + 1;
        entry.tries.set(key, tries);
        if (tries < maxTries) throw err;
        // Given up: a new attempt (on the head) is the way on, not a mission stuck merging.
        outcome = {
          kind: "conflicted",
          reason: "conflict",
          files: [],
          error: `could not be integrated after ${tries} tries: ${errorMessage(err)}`,
        };
      }
      if (stopper.signal.aborted || entries.get(missionId) !== entry) return;
      await opts.publish(answerEvent(missionId, request, onto, outcome));
      answered = true;
      if (outcome.kind === "merged") {
        mlog.info(
          { merged: outcome.merged, onto, fast_forward: outcome.fastForward },
          "task merged",
        );
      } else {
        mlog.warn(
          { reason: outcome.reason, files: outcome.files, error: outcome.error },
          "task conflicted",
        );
      }
    } catch (err) {
      if (stopper.signal.aborted || entries.get(missionId) !== entry) return;
      retry = true;
      mlog.error({ err: errorMessage(err) }, "integration failed; it will be tried again");
    } finally {
      entry.queue = mergeEnded(entry.queue, key, answered);
      if (retry && entries.get(missionId) === entry && !stopper.signal.aborted) {
        const delay = backoffDelay(entry.tries.get(key) ?? 1, retryMs, 30_000);
        entry.timer = setTimeout(() => {
          entry.timer = null;
          pump(missionId);
        }, delay);
        entry.timer.unref?.();
      }
    }
    // The answer comes back through the feed; the machine's next step pokes the queue.
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
    poke(missionId) {
      pump(missionId);
    },
    forget(missionId) {
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
