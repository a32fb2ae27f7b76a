/**
 * Where the time goes when the swarm is the bottleneck: one no-op mission
 * with the orchestrator and the workers under `node --cpu-prof`, the
 * profiles summarized by place (package, our file, Node internals, GC) and
 * by function. Figures measured under the profiler are not reported as
 * benchmark figures; only the shares are.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readCpuProfiles, type ProfileSummary } from "./cpu-profile.ts";
import { startFakeModelServer } from "./fake-model-server.ts";
import { fakeModelEnv } from "./model-scaling.ts";
import { modelWidePlan, noopWidePlan } from "./plans.ts";
import { startHarness, type Harness } from "./swarm-harness.ts";

export interface ProfileOptions {
  noopTasks: number;
  replicas: number;
  concurrency: number;
  modelTasks: number;
  modelSlots: number;
  callMs: number;
}

export interface ProfileFigures {
  noop: { orchestrator: ProfileSummary | null; workers: ProfileSummary | null; tasks: number };
  model: { workers: ProfileSummary | null; tasks: number };
}

async function profiled(
  name: string,
  run: (h: Harness, workerEnv: Record<string, string>) => Promise<void>,
): Promise<{ orchestrator: ProfileSummary | null; workers: ProfileSummary | null }> {
  const root = await mkdtemp(path.join(os.tmpdir(), `squad-bench-prof-${name}-`));
  const dirs = { orch: path.join(root, "orchestrator"), workers: path.join(root, "workers") };
  await mkdir(dirs.orch);
  await mkdir(dirs.workers);
  try {
    const h = await startHarness(`profile-${name}`, {
      orchestratorNodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dirs.orch}`],
    });
    try {
      // NODE_OPTIONS reaches the replica processes a `--replicas N` supervisor starts.
      await run(h, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dirs.workers}` });
    } finally {
      // Profiles are written when the processes exit.
      await h.close();
    }
    return {
      orchestrator: await readCpuProfiles(dirs.orch),
      workers: await readCpuProfiles(dirs.workers),
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export async function profileRun(opts: ProfileOptions): Promise<ProfileFigures> {
  const noop = await profiled("noop", async (h, workerEnv) => {
    const w = await h.startWorkers({
      replicas: opts.replicas,
      concurrency: opts.concurrency,
      env: workerEnv,
    });
    await h.runMission("profile-noop", noopWidePlan(opts.noopTasks), 300_000);
    await w.stop();
  });
  const fake = await startFakeModelServer({ callMs: opts.callMs });
  try {
    const model = await profiled("model", async (h, workerEnv) => {
      const w = await h.startWorkers({
        replicas: 1,
        concurrency: opts.modelSlots,
        env: { ...fakeModelEnv(fake.url), ...workerEnv },
      });
      await h.runMission("profile-model", modelWidePlan(opts.modelTasks), 300_000);
      await w.stop();
    });
    return {
      noop: { ...noop, tasks: opts.noopTasks },
      model: { workers: model.workers, tasks: opts.modelTasks },
    };
  } finally {
    await fake.close();
  }
}
