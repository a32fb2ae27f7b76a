/**
 * Benchmark 8, git workspaces: the per-task cost of a task's checkout,
 * commit, bundle, upload, fetch and integration (workspace-cost.ts), and the
 * swarm's throughput with and without mission repositories side by side
 * (workspace-throughput.ts), as one section of the report.
 */
import { atLeast, atMost, type Figure, type Section } from "./results.ts";
import { median, percentile, ratio } from "./stats.ts";
import {
  workspaceCost,
  type WorkspaceCostOptions,
  type WorkspaceCostSamples,
} from "./workspace-cost.ts";
import {
  workspaceThroughput,
  type WorkspaceThroughputFigures,
  type WorkspaceThroughputOptions,
} from "./workspace-throughput.ts";

export interface WorkspaceOptions {
  cost: WorkspaceCostOptions;
  throughput: WorkspaceThroughputOptions;
}

export interface WorkspaceFigures {
  cost: WorkspaceCostSamples;
  throughput: WorkspaceThroughputFigures;
}

export async function workspaceBench(opts: WorkspaceOptions): Promise<WorkspaceFigures> {
  return {
    cost: await workspaceCost(opts.cost),
    throughput: await workspaceThroughput(opts.throughput),
  };
}

const ms = (key: string, name: string, value: number, target?: Figure["target"]): Figure => ({
  key,
  name,
  value,
  unit: "ms",
  ...(target ? { target } : {}),
});

export function workspaceSection(
  f: WorkspaceFigures,
  opts: WorkspaceOptions,
  durationMs: number,
): Section {
  const c = f.cost;
  const repo = `${opts.cost.files} files, ${(c.repoBytes / 1e6).toFixed(0)} MB`;
  const figures: Figure[] = [];
  const phase = (key: string, label: string, values: number[], limit?: number) => {
    const p50 = percentile(values, 50);
    figures.push(
      ms(
        `workspace.${key}.p50`,
        `${label}, p50 (${repo})`,
        p50,
        limit ? atMost(p50, limit, "ms") : undefined,
      ),
      ms(`workspace.${key}.p99`, `${label}, p99`, percentile(values, 99)),
    );
  };
  phase("worker", "worker side per attempt: checkout + commit, bundle, upload", c.worker, 60);
  phase("checkout", "worker: fetch the base and bring the checkout to it", c.checkout);
  phase("commit", "worker: tree-check, commit, bundle and upload one changed file", c.commit);
  phase("noop", "worker: a task that changes nothing, on its slot's last base", c.noop);
  phase(
    "reset.worker",
    "every checkout reset in full (SWARM_CHECKOUT_REUSE=0): worker side",
    c.reset.worker,
  );
  phase("reset.checkout", "reset in full: fetch the base and reset the checkout", c.reset.checkout);
  phase("reset.commit", "reset in full: tree-check, commit, bundle and upload", c.reset.commit);
  phase("reset.noop", "reset in full: a task that changes nothing", c.reset.noop);
  phase("integrate.ff", "orchestrator: integrate by fast-forward", c.integrateFastForward, 30);
  phase(
    "integrate.rebase",
    "orchestrator: integrate by rebase (merge-tree, recommit, publish)",
    c.integrateRebase,
    30,
  );
  phase(
    "integrate.pass",
    "orchestrator: a fast-forward and a rebase in one pass, per task",
    c.integratePass,
    30,
  );
  phase("fetch", "another replica fetches the new head (bundles from the store)", c.fetch);

  const t = f.throughput;
  const rounds = (kind: "empty" | "shell", mode: "plain" | "git", reuse: boolean) =>
    t.rates.find((r) => r.kind === kind && r.mode === mode && r.reuse === reuse)?.rounds ?? [];
  for (const [kind, reuse] of [
    ["empty", true],
    ["shell", true],
    ["shell", false],
  ] as const) {
    const plain = median(rounds(kind, "plain", reuse));
    const git = median(rounds(kind, "git", reuse));
    const r = ratio(git, plain);
    const label = kind === "empty" ? "`run: []`" : '`run: ["true"]`';
    figures.push({
      key: `workspace.rate.${kind}${reuse ? "" : ".reset"}`,
      name:
        `${label} tasks/s with a mission repository` +
        (reuse ? "" : ", every checkout reset in full (SWARM_CHECKOUT_REUSE=0)") +
        ` (${opts.throughput.replicas} × ${opts.throughput.concurrency} slots)`,
      value: git,
      unit: "tasks/s",
      reference: { label: "without a repository", value: plain, unit: "tasks/s" },
      ratio: r,
      ...(r !== null && reuse ? { target: atLeast(r, 0.9, "× (lose < 10%)") } : {}),
    });
  }
  const waves = (mode: "plain" | "git") => t.waves.filter((w) => w.mode === mode);
  const span = (mode: "plain" | "git") => median(waves(mode).map((w) => w.makespanMs));
  const integration = waves("git").flatMap((w) => w.integrationMs);
  const gitSpan = span("git");
  const plainSpan = span("plain");
  figures.push({
    key: "workspace.waves.makespan",
    name: `${opts.throughput.waveTasks}-task mission, ${opts.throughput.width} parallel per wave, each writing a file: makespan with a repository`,
    value: gitSpan,
    unit: "ms",
    reference: { label: "without a repository", value: plainSpan, unit: "ms" },
    ratio: ratio(gitSpan, plainSpan),
  });
  if (integration.length) {
    figures.push(
      ms(
        "workspace.waves.merge.p50",
        "task_completed → task_merged in that mission, p50",
        percentile(integration, 50),
      ),
      ms(
        "workspace.waves.merge.p99",
        "task_completed → task_merged, p99",
        percentile(integration, 99),
      ),
    );
  }
  const last = waves("git").at(-1);
  const notes = [
    `Per-task cost in one process against a real nats-server, ${opts.cost.rounds} rounds of two parallel ` +
      `attempts on a repository of ${repo} (base bundle ${(c.baseBundleBytes / 1e6).toFixed(1)} MB, ` +
      `fetched once per replica and mission, not counted): each attempt resets its slot's checkout to the ` +
      `head, changes one file and commits (tree-check walk, add -A, write-tree, commit-tree, a thin bundle, ` +
      `upload); the same on other slots with every checkout reset in full (SWARM_CHECKOUT_REUSE=0), in ` +
      `alternating order; a task that changes nothing is timed on the base its slot had last; ` +
      `the first of the two is fast-forwarded, the second rebased onto it (one at a time in even rounds, in ` +
      `one merge-queue pass in odd ones); a third cache repository then ` +
      `fetches the new head.`,
    `Throughput: ${opts.throughput.tasks} tasks per mission on ${opts.throughput.replicas} replicas × ` +
      `${opts.throughput.concurrency} slots, the same processes for both, ${opts.throughput.rounds} ` +
      `rounds alternating which goes first; the mission repository's base is an empty first commit. ` +
      '`run: []` needs no checkout at all; `run: ["true"]` runs in a checkout that is reset, ' +
      "tree-checked and found unchanged (no commit, no merge); that pair again on worker processes " +
      "started with SWARM_CHECKOUT_REUSE=0.",
    last
      ? `In the wave mission's last run with a repository: ${last.fastForwards} fast-forwards, ` +
        `${last.rebased} rebases, ${last.conflicted} conflicts.`
      : "",
  ].filter(Boolean);
  return { id: "workspace", title: "8. Git workspaces", figures, notes, durationMs };
}
