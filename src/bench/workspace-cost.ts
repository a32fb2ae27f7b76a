/**
 * Benchmark 8, git workspaces, part one: what one task attempt's workspace
 * costs, worker side and orchestrator side, on a repository of `files`
 * files and `files × fileBytes` bytes, in this process against a real
 * nats-server and the real git code (no swarm processes, so the figures
 * are the workspace's own). Each round, two attempts start from the same
 * head (two parallel tasks), each changes one file of its own and commits;
 * the first is integrated by fast-forward, the second by a rebase onto the
 * first: one at a time in even rounds, both in one merge-queue pass (as the
 * queue does with attempts waiting together) in odd ones. A third cache
 * repository (another replica) then fetches the new head, as the next
 * attempt on another machine would.
 *
 * The worker side is measured twice in the same rounds, in alternating
 * order: with its slots reusing what their last attempt proved (the
 * default) and with every checkout reset in full (SWARM_CHECKOUT_REUSE=0,
 * how every attempt started before), on slots of their own; the first's
 * commits are the ones integrated. Each also runs a task that changes
 * nothing, twice per round on a slot of its own: the second time on the
 * base its slot's last attempt already had (a no-op mission's tasks).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { prepareCheckout, type KnownCheckout } from "../workspace/attempt-checkout.ts";
import { bundleLimitsFromEnv, openBundleStore } from "../workspace/bundle-store.ts";
import { makeMissionBase } from "../workspace/mission-base.ts";
import { integrateAttempt, integrateChain } from "../workspace/mission-integrator.ts";
import type { MergeRequest } from "../workspace/merge-queue.ts";
import { MissionRepo } from "../workspace/mission-repo.ts";
import { startBenchNatsServer } from "./nats-server.ts";

export interface WorkspaceCostOptions {
  files: number;
  fileBytes: number;
  /** Rounds of two attempts each. */
  rounds: number;
}

/** The worker's side of attempts, ms, one entry per attempt. */
export interface WorkerSamples {
  /** Fetch the base if missing, then bring the slot's checkout to it. */
  checkout: number[];
  /** Walk (tree-check), add -A, write-tree, commit-tree, bundle, upload: the attempt's commit published. */
  commit: number[];
  /** checkout + commit: what the worker adds to an attempt. */
  worker: number[];
  /** checkout + walk for a task that changes nothing, on the base its slot had last. */
  noop: number[];
}

/** Milliseconds per phase, one entry per attempt (or per integration). */
export interface WorkspaceCostSamples extends WorkerSamples {
  /** The same worker phases with every checkout reset in full (SWARM_CHECKOUT_REUSE=0). */
  reset: WorkerSamples;
  /** Fetch the commit, fast-forward, move the branch. */
  integrateFastForward: number[];
  /** Fetch the commit, merge-tree onto the head, recommit, publish, move the branch. */
  integrateRebase: number[];
  /** Both attempts of a round in one pass (a fast-forward and a rebase): ms per attempt. */
  integratePass: number[];
  /** Another replica's cache fetching the new head (an incremental bundle chain). */
  fetch: number[];
  /** Size of the base bundle and of one attempt's bundle, bytes. */
  baseBundleBytes: number;
  repoBytes: number;
}

function fileText(i: number, bytes: number, salt = ""): string {
  const line = `file ${i} ${salt} ${"x".repeat(60)}\n`;
  return line.repeat(Math.max(1, Math.ceil(bytes / line.length))).slice(0, bytes);
}

export async function workspaceCost(opts: WorkspaceCostOptions): Promise<WorkspaceCostSamples> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "squad-bench-workspace-"));
  const server = await startBenchNatsServer();
  const nc = await connect({ servers: server.url, name: "bench-workspace" });
  try {
    const seed = path.join(dir, "seed");
    for (let i = 0; i < opts.files; i++) {
      const sub = path.join(seed, `d${i % 20}`);
      await mkdir(sub, { recursive: true });
      await writeFile(path.join(sub, `f${i}.txt`), fileText(i, opts.fileBytes));
    }
    const store = await openBundleStore(nc, bundleLimitsFromEnv({}));
    const mission = `bench-ws-${Date.now()}`;
    const submitter = await MissionRepo.open(path.join(dir, "submitter"), mission, store);
    const { base } = await makeMissionBase(seed, submitter);
    const baseBundle = await store.get(mission, base);
    const worker = await MissionRepo.open(path.join(dir, "worker"), mission, store);
    const orchestrator = await MissionRepo.open(path.join(dir, "orchestrator"), mission, store);
    const other = await MissionRepo.open(path.join(dir, "other-replica"), mission, store);
    // The first fetch of the base is a one-off per replica and mission: warm both caches.
    await worker.ensure(base);
    await orchestrator.ensure(base);
    await other.ensure(base);

    const s: WorkspaceCostSamples = {
      checkout: [],
      commit: [],
      worker: [],
      noop: [],
      reset: { checkout: [], commit: [], worker: [], noop: [] },
      integrateFastForward: [],
      integrateRebase: [],
      integratePass: [],
      fetch: [],
      baseBundleBytes: baseBundle?.length ?? 0,
      repoBytes: opts.files * opts.fileBytes,
    };
    interface Slot {
      slot: string;
      dir: string;
      known: KnownCheckout | null;
    }
    const variants = (["reuse", "reset"] as const).map((name) => ({
      name,
      reuse: name === "reuse",
      samples: name === "reuse" ? (s as WorkerSamples) : s.reset,
      slots: ["s1", "s2", "noop"].map((n): Slot => ({
        slot: `${name}-${n}`,
        dir: path.join(dir, "checkouts", `${name}-${n}`),
        known: null,
      })),
    }));
    const limits = { maxFileBytes: 64 * 1024 * 1024 };
    /** One attempt of the worker: checkout, the task's work (not counted), walk and commit. */
    const attempt = async (
      v: (typeof variants)[number],
      slot: Slot,
      base: string,
      work: ((dir: string) => Promise<void>) | null,
      title: string,
    ) => {
      const t0 = performance.now();
      const checkout = await prepareCheckout({
        repo: worker,
        dir: slot.dir,
        base,
        slot: slot.slot,
        known: slot.known,
        reuse: v.reuse,
      });
      const t1 = performance.now();
      if (work) await work(slot.dir);
      const t2 = performance.now();
      const walk = await checkout.inspect(limits);
      if (walk.problems.length > 0) throw new Error("the bench's checkout was refused");
      const changes = await checkout.commitAttempt(
        {
          author: { name: `builder/bench-${slot.slot}`, email: "builder@squad.local" },
          title,
          trailers: {
            "Squad-Mission": mission,
            "Squad-Task": title,
            "Squad-Attempt": "1",
            "Squad-Agent": "builder",
          },
        },
        walk,
      );
      const t3 = performance.now();
      await checkout.release();
      slot.known = checkout.known();
      return { changes, checkoutMs: t1 - t0, commitMs: t3 - t2 };
    };
    let head = base;
    const signal = new AbortController().signal;
    for (let round = 0; round < opts.rounds; round++) {
      // Both attempts of a round start from the same head: two parallel tasks.
      const roundBase = head;
      const commits: string[] = [];
      // The order flips each round, so a drift of the machine weighs on both.
      for (const v of round % 2 ? [...variants].reverse() : variants) {
        for (const [k, slot] of v.slots.slice(0, 2).entries()) {
          // The task's own work: one file of its own changed.
          const n = (round * 2 + k) % opts.files;
          const out = await attempt(
            v,
            slot,
            roundBase,
            (d) =>
              writeFile(
                path.join(d, `d${n % 20}`, `f${n}.txt`),
                fileText(n, opts.fileBytes, `round ${round} ${v.name}`),
              ),
            `t${round}-${k}`,
          );
          if (!out.changes) throw new Error("a changed file made no commit");
          if (v.reuse) commits.push(out.changes.commit);
          v.samples.checkout.push(out.checkoutMs);
          v.samples.commit.push(out.commitMs);
          v.samples.worker.push(out.checkoutMs + out.commitMs);
        }
        const noop = v.slots[2]!;
        for (let again = 0; again < 2; again++) {
          const out = await attempt(v, noop, roundBase, null, `noop${round}-${again}`);
          if (out.changes) throw new Error("a task that changed nothing made a commit");
          if (again === 1) v.samples.noop.push(out.checkoutMs + out.commitMs);
        }
      }
      const requests = commits.map((commit, k): MergeRequest => ({
        task_id: `t${round}-${k}`,
        attempt: 1,
        agent: "builder",
        base: roundBase,
        commit,
        verify: [],
        timeout_s: 60,
      }));
      const chainOpts = {
        checkoutDir: path.join(dir, "merge"),
        verify: () => Promise.resolve({ ok: true, error: "" }),
        signal,
      };
      if (round % 2 === 1) {
        const t0 = performance.now();
        const pass = await integrateChain(orchestrator, requests, head, chainOpts);
        const ms = performance.now() - t0;
        if (pass.error !== undefined) throw pass.error;
        for (const step of pass.steps) {
          if (step.outcome.kind !== "merged") throw new Error("integration conflicted");
          head = step.outcome.head;
        }
        s.integratePass.push(ms / requests.length);
      } else {
        for (const request of requests) {
          const t0 = performance.now();
          const out = await integrateAttempt(orchestrator, request, head, chainOpts);
          const ms = performance.now() - t0;
          if (out.kind !== "merged") throw new Error(`integration conflicted: ${out.error}`);
          (out.fastForward ? s.integrateFastForward : s.integrateRebase).push(ms);
          head = out.head;
        }
      }
      const t0 = performance.now();
      await other.ensure(head);
      s.fetch.push(performance.now() - t0);
    }
    return s;
  } finally {
    await nc.close().catch(() => undefined);
    await server.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
