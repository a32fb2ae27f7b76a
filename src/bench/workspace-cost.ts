/**
 * Benchmark 8, git workspaces, part one: what one task attempt's workspace
 * costs, worker side and orchestrator side, on a repository of `files`
 * files and `files × fileBytes` bytes, in this process against a real
 * nats-server and the real git code (no swarm processes, so the figures
 * are the workspace's own). Each round, two attempts start from the same
 * head (two parallel tasks), each changes one file of its own and commits;
 * the first is integrated by fast-forward, the second by a rebase onto the
 * first. A third cache repository (another replica) then fetches the new
 * head, as the next attempt on another machine would.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { prepareCheckout } from "../workspace/attempt-checkout.ts";
import { bundleLimitsFromEnv, openBundleStore } from "../workspace/bundle-store.ts";
import { makeMissionBase } from "../workspace/mission-base.ts";
import { integrateAttempt } from "../workspace/mission-integrator.ts";
import type { MergeRequest } from "../workspace/merge-queue.ts";
import { MissionRepo } from "../workspace/mission-repo.ts";
import { startBenchNatsServer } from "./nats-server.ts";

export interface WorkspaceCostOptions {
  files: number;
  fileBytes: number;
  /** Rounds of two attempts each. */
  rounds: number;
}

/** Milliseconds per phase, one entry per attempt (or per integration). */
export interface WorkspaceCostSamples {
  /** Fetch the base if missing, then reset the slot's checkout to it. */
  checkout: number[];
  /** add -A, write-tree, commit-tree, bundle, upload: the attempt's commit published. */
  commit: number[];
  /** checkout + commit: what the worker adds to an attempt. */
  worker: number[];
  /** Fetch the commit, fast-forward, move the branch. */
  integrateFastForward: number[];
  /** Fetch the commit, merge-tree onto the head, recommit, publish, move the branch. */
  integrateRebase: number[];
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
      integrateFastForward: [],
      integrateRebase: [],
      fetch: [],
      baseBundleBytes: baseBundle?.length ?? 0,
      repoBytes: opts.files * opts.fileBytes,
    };
    const slots = ["s1", "s2"].map((slot) => ({
      slot,
      dir: path.join(dir, "checkouts", slot),
    }));
    let head = base;
    const signal = new AbortController().signal;
    for (let round = 0; round < opts.rounds; round++) {
      // Both attempts of a round start from the same head: two parallel tasks.
      const roundBase = head;
      const commits: string[] = [];
      for (const [k, slot] of slots.entries()) {
        const t0 = performance.now();
        const checkout = await prepareCheckout({
          repo: worker,
          dir: slot.dir,
          base: roundBase,
          slot: slot.slot,
        });
        const t1 = performance.now();
        // The task's own work (not counted): one file of its own changed.
        const n = (round * 2 + k) % opts.files;
        await writeFile(
          path.join(slot.dir, `d${n % 20}`, `f${n}.txt`),
          fileText(n, opts.fileBytes, `round ${round}`),
        );
        const t2 = performance.now();
        const changes = await checkout.commitAttempt({
          author: { name: `builder/bench-${slot.slot}`, email: "builder@squad.local" },
          title: `bench task ${round}.${k}`,
          trailers: {
            "Squad-Mission": mission,
            "Squad-Task": `t${round}-${k}`,
            "Squad-Attempt": "1",
            "Squad-Agent": "builder",
          },
        });
        const t3 = performance.now();
        await checkout.release();
        if (!changes) throw new Error("a changed file made no commit");
        commits.push(changes.commit);
        s.checkout.push(t1 - t0);
        s.commit.push(t3 - t2);
        s.worker.push(t1 - t0 + (t3 - t2));
      }
      for (const [k, commit] of commits.entries()) {
        const request: MergeRequest = {
          task_id: `t${round}-${k}`,
          attempt: 1,
          agent: "builder",
          base: roundBase,
          commit,
          verify: [],
          timeout_s: 60,
        };
        const t0 = performance.now();
        const out = await integrateAttempt(orchestrator, request, head, {
          checkoutDir: path.join(dir, "merge"),
          verify: () => Promise.resolve({ ok: true, error: "" }),
          signal,
        });
        const ms = performance.now() - t0;
        if (out.kind !== "merged") throw new Error(`integration conflicted: ${out.error}`);
        (out.fastForward ? s.integrateFastForward : s.integrateRebase).push(ms);
        head = out.head;
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
