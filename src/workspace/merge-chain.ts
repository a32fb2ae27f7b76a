/**
 * One pass of the merge queue, git only, in the orchestrator's cache
 * repository of the mission: the waiting attempts' commits put one after
 * the other on the mission branch, each onto the head the one before made.
 *
 * Per attempt: a fast-forward when its commit's parent is the head, else a
 * cherry-pick onto the head (merge-tree.ts: no working tree). A conflict is
 * answered `conflict` with its files. A clean rebase of a task with `verify`
 * checks out ITS merged tree in a private directory and runs those commands
 * there (every rebased task of a pass, each on its own tree): failing,
 * `verify_failed`. Either leaves the head where it was for the next one.
 *
 * Then, before any answer goes out, the pass's rebased commits are
 * published as one bundle (MissionRepo.publishAll: every replica can fetch
 * any new head, with one download), and the refs move in one transaction
 * (`refs/squad/<task>/<attempt>` per attempt, the branch
 * `refs/heads/squad/<mission>`).
 *
 * The rebased commit keeps the attempt's author, message and trailers; the
 * committer is the orchestrator, with the attempt's own commit date, so
 * integrating the same attempt onto the same head again (after a crash
 * between the merge and its event) makes the very same commit.
 *
 * Objects are read and written through the cache's long-lived git processes
 * and merged by its long-lived merge-tree (repo-pipes.ts); what still
 * spawns is, per attempt, the index-pack of its commit's bundle (in parallel
 * for a pass) and, per pass, one `git pack-objects` for the bundle.
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { MergeRequest } from "./merge-queue.ts";
import type { MissionRepo } from "./mission-repo.ts";

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

export interface ChainOptions {
  checkoutDir: string;
  verify: VerifyRunner;
  signal: AbortSignal;
}

/** The committer of rebased commits. */
export const MERGE_COMMITTER = { name: "squad-orchestrator", email: "orchestrator@squad.local" };

export function branchRef(missionId: string): string {
  return `refs/heads/squad/${missionId}`;
}

export function attemptRef(taskId: string, attempt: number): string {
  return `refs/squad/${taskId}/${attempt}`;
}

export interface ChainStep {
  request: MergeRequest;
  /** The head it was integrated onto. */
  onto: string;
  outcome: IntegrationOutcome;
}

export interface ChainResult {
  /** The answered attempts, in order: a prefix of the requests. */
  steps: ChainStep[];
  /** Infrastructure trouble with the attempt after the last step (worth a retry), if any. */
  error?: unknown;
}

/**
 * Integrate `requests` in order, the first onto `onto` (git only; publishes
 * the merged commits' bundle). Stops at the first attempt that fails on
 * infrastructure (a bundle not in the store, git failing): what came before
 * it is published and answered, it and the rest are for a retry.
 */
export async function integrateChain(
  repo: MissionRepo,
  requests: readonly MergeRequest[],
  onto: string,
  opts: ChainOptions,
): Promise<ChainResult> {
  // Every waiting attempt's bundle fetched at once; one that fails is fetched (and fails) on its own below.
  await repo.ensureAll([onto, ...requests.map((r) => r.commit)]).catch(() => undefined);
  const steps: ChainStep[] = [];
  let head = onto;
  let error: unknown;
  for (const request of requests) {
    try {
      const outcome = await integrateOne(repo, request, head, opts);
      steps.push({ request, onto: head, outcome });
      if (outcome.kind === "merged") head = outcome.merged;
    } catch (err) {
      error = err;
      break;
    }
  }
  try {
    await publishSteps(repo, onto, steps);
    const refs = steps.map((s) => ({
      ref: attemptRef(s.request.task_id, s.request.attempt),
      commit: s.request.commit,
    }));
    if (head !== onto) refs.push({ ref: branchRef(repo.missionId), commit: head });
    await repo.setRefs(refs);
  } catch (err) {
    // Nothing may be answered before its commits can be fetched: the whole pass again.
    return { steps: [], error: err };
  }
  return error === undefined ? { steps } : { steps, error };
}

/** One attempt onto `onto`, as a pass of its own. Throws on infrastructure trouble. */
export async function integrateAttempt(
  repo: MissionRepo,
  request: MergeRequest,
  onto: string,
  opts: ChainOptions,
): Promise<IntegrationOutcome> {
  const r = await integrateChain(repo, [request], onto, opts);
  if (r.steps[0]) return r.steps[0].outcome;
  throw r.error;
}

/** Publish the pass's merged commits: a fast-forward's bundle is its worker's; the rebased ones in one. */
async function publishSteps(repo: MissionRepo, onto: string, steps: readonly ChainStep[]) {
  const fastForwards: string[] = [];
  const rebased: string[] = [];
  for (const s of steps) {
    if (s.outcome.kind !== "merged") continue;
    (s.outcome.fastForward ? fastForwards : rebased).push(s.outcome.merged);
  }
  const stored = await Promise.all(fastForwards.map((c) => repo.store.has(repo.missionId, c)));
  for (const [i, c] of fastForwards.entries()) {
    if (!stored[i]) await repo.publish(c, [onto, ...fastForwards.slice(0, i)]);
  }
  if (rebased.length === 0) return;
  const floor = await oldestBase(
    repo,
    onto,
    steps.map((s) => s.request.base),
  );
  if (floor) {
    // From the pass's oldest base: the replicas that ran these attempts have it.
    await repo.publishAll(rebased, [floor.base], [...floor.through, ...fastForwards]);
  } else {
    await repo.publishAll(rebased, [onto, ...fastForwards]);
  }
}

/**
 * The oldest of `bases` on the branch below `onto` (first parents, at most
 * 32 back) and the commits after it up to `onto`, oldest first; null when
 * `onto` is the only one (or none is that near).
 */
async function oldestBase(repo: MissionRepo, onto: string, bases: readonly string[]) {
  const wanted = new Set(bases);
  const line: string[] = [];
  let found: { base: string; through: string[] } | null = null;
  let at: string | undefined = onto;
  for (let steps = 0; at && wanted.size > 0 && steps <= 32; steps++) {
    if (wanted.delete(at)) found = { base: at, through: [...line].reverse() };
    line.push(at);
    at = /^parent ([0-9a-f]{40})$/m.exec(await repo.readCommit(at))?.[1];
  }
  return found && found.base !== onto ? found : null;
}

async function integrateOne(
  repo: MissionRepo,
  request: MergeRequest,
  onto: string,
  opts: ChainOptions,
): Promise<IntegrationOutcome> {
  await repo.ensure(request.commit);
  const parent = (await repo.objectInfo(`${request.commit}^`))?.oid;
  if (!parent) {
    return {
      kind: "conflicted",
      reason: "conflict",
      files: [],
      error: `its commit ${request.commit} has no parent on the mission branch`,
    };
  }
  if (parent === onto) {
    return { kind: "merged", merged: request.commit, head: request.commit, fastForward: true };
  }
  if (!(await repo.isAncestor(parent, onto))) {
    return {
      kind: "conflicted",
      reason: "conflict",
      files: [],
      error: `its base ${parent} is not on the mission branch (head ${onto})`,
    };
  }
  const m = await repo.mergeTrees(onto, request.commit);
  if (!m.clean) {
    return {
      kind: "conflicted",
      reason: "conflict",
      files: m.files,
      error: m.conflicts.join("; ") || `conflicting changes in ${m.files.join(", ")}`,
    };
  }
  const merged = await recommit(repo, request.commit, m.tree, onto);
  if (request.verify.length > 0) {
    const v = await verifyTree(repo, merged, request, opts);
    if (!v.ok) return { kind: "conflicted", reason: "verify_failed", files: [], error: v.error };
  }
  return { kind: "merged", merged, head: merged, fastForward: false };
}

/**
 * `commit`'s author line and message on `tree` with parent `onto`, committed
 * by the orchestrator at the attempt's commit date: the object
 * `git commit-tree` makes of the same (no encoding header, the message as is).
 */
async function recommit(repo: MissionRepo, commit: string, tree: string, onto: string) {
  const raw = await repo.readCommit(commit);
  const split = raw.indexOf("\n\n");
  const header = split < 0 ? raw : raw.slice(0, split);
  const message = split < 0 ? "" : raw.slice(split + 2);
  const author = /^author .* <[^>]*> \d+ [+-]\d{4}$/m.exec(header);
  const committed = /^committer .* <[^>]*> (\d+) ([+-]\d{4})$/m.exec(header);
  if (!author || !committed)
    throw new Error(`commit ${commit} has no readable author or committer`);
  const committer = `${MERGE_COMMITTER.name} <${MERGE_COMMITTER.email}> ${committed[1]} ${committed[2]}`;
  return repo.writeCommit(
    `tree ${tree}\nparent ${onto}\n${author[0]}\ncommitter ${committer}\n\n${message}`,
  );
}

/** The merged tree in a fresh private directory, the task's verify commands run there, removed. */
async function verifyTree(
  repo: MissionRepo,
  merged: string,
  request: MergeRequest,
  opts: ChainOptions,
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
