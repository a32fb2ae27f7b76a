/**
 * The chaos scenarios: each a real mission through the launcher with one
 * kind of fault injected, in two sizes: `full` (scripts/chaos, the numbers
 * of docs/reliability.md) and `quick` (the vitest cases in
 * tests/reliability, small enough for scripts/test).
 *
 * Tuning shared by every scenario (so a killed replica's task comes back in
 * seconds rather than the production default's 30 s; see docs/reliability.md):
 * ack_wait 5 s, claim lease 2.5 s, mission lease 3 s.
 */
import { attacker } from "./attacker.ts";
import { runBadInputScenario } from "./bad-input.ts";
import {
  killClusterNodeAt,
  killOrchestratorAt,
  killWorkersEvery,
  openGate,
  restartNatsAt,
  type Injection,
} from "./injectors.ts";
import { gateTask, modelPlan, runStepPlan, sideEffectCommand } from "./mission-briefs.ts";
import { checkMergedOnce, type MergeCheck } from "./merge-check.ts";
import { runMission } from "./mission-run.ts";
import { createPrng } from "./prng.ts";
import { AGENTS, row, setup, type Scenario } from "./scenario-row.ts";

export type { Scenario, ScenarioOptions, ScenarioRow, ScenarioSize } from "./scenario-row.ts";
export { CHAOS_TUNING } from "./scenario-row.ts";

// ---------------------------------------------------------------- the scenarios

export const workerKills: Scenario = {
  id: "worker-kills",
  title: "worker replicas SIGKILLed",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 20 : 200;
    const everyMs = quick ? 2500 : 3000;
    const prng = createPrng(o.seed);
    // However fast the machine, the mission runs until this many kills landed.
    const gateAfterKills = quick ? 2 : 10;
    const plan = runStepPlan({
      tasks,
      agents: AGENTS,
      waves: quick ? 5 : 10,
      stepS: quick ? 0.8 : 0.5,
    });
    plan.waves[0]!.tasks.push(gateTask("tester"));
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks while worker replicas are killed`,
        plan,
        agents: AGENTS,
        replicas: quick ? 2 : 3,
        timeoutMs: quick ? 150_000 : 900_000,
      }),
      // 10.5 s: the launcher gives up on a child killed 5 times in a row within 10 s of its start.
      async (ctx) => {
        try {
          return await killWorkersEvery(ctx, {
            everyMs,
            minUptimeMs: 10_500,
            prng,
            gateAfterKills,
            // The quick case asserts one restart per kill: no kill while the swarm stops.
            stopAtGate: quick,
          });
        } finally {
          await openGate(ctx).catch(() => undefined);
        }
      },
    );
    return row(
      this,
      o,
      run,
      `SIGKILL of a random worker replica every ${everyMs / 1000} s`,
      injected,
      {
        notes: [
          `replicas restarted by the launcher: ${run.restarts.workers}`,
          `re-dispatched attempts: ${run.account.extraAttempts}`,
        ],
      },
    );
  },
};

export const orchestratorKills: Scenario = {
  id: "orchestrator-kills",
  title: "orchestrator SIGKILLed twice",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 12 : 100;
    const plan = runStepPlan({ tasks, agents: AGENTS, waves: quick ? 4 : 10, stepS: 0.3 });
    // However fast the machine, the mission runs until both kills landed.
    plan.waves[0]!.tasks.push(gateTask("tester"));
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks while the orchestrator is killed twice`,
        plan,
        agents: AGENTS,
        replicas: 2,
        timeoutMs: quick ? 150_000 : 600_000,
      }),
      async (ctx) => {
        try {
          return await killOrchestratorAt(ctx, { fractions: [1 / 3, 2 / 3] });
        } finally {
          await openGate(ctx).catch(() => undefined);
        }
      },
    );
    const problems =
      injected.length < 2 ? [`only ${injected.length} of 2 orchestrator kills landed`] : [];
    if (run.restarts.orchestrator < injected.length)
      problems.push(`the orchestrator was restarted ${run.restarts.orchestrator} times`);
    return row(this, o, run, "SIGKILL of the orchestrator at 1/3 and 2/3 of the tasks", injected, {
      notes: [`orchestrator restarts by the launcher: ${run.restarts.orchestrator}`],
      problems,
    });
  },
};

/**
 * The orchestrator SIGKILLed while an attempt waits for the merge queue
 * (git workspaces; each task's `verify` sleeps, so a rebased task's re-verify
 * on the merged tree takes a while). After resume every task's commit must
 * be on the mission branch exactly once (merge-check.ts).
 */
export const orchestratorKillsMidMerge: Scenario = {
  id: "orchestrator-kills-mid-merge",
  title: "orchestrator SIGKILLed mid-merge",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 12 : 60;
    const plan = runStepPlan({ tasks, agents: AGENTS, waves: quick ? 2 : 5, stepS: 0.2 });
    for (const w of plan.waves)
      for (const t of w.tasks) t.verify = [...(t.verify ?? []), "sleep 1"];
    plan.waves[0]!.tasks.push(gateTask("tester"));
    let check: MergeCheck | null = null;
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks while the orchestrator is killed mid-merge`,
        plan,
        agents: AGENTS,
        replicas: 2,
        timeoutMs: quick ? 180_000 : 600_000,
      }),
      async (ctx) => {
        try {
          return await killOrchestratorAt(ctx, { fractions: [1 / 4, 1 / 2], midMerge: true });
        } finally {
          await openGate(ctx).catch(() => undefined);
          await ctx.ended;
          check = await checkMergedOnce(
            ctx.observer.nc,
            ctx.missionId,
            await ctx.observer.events(ctx.missionId),
          );
        }
      },
    );
    const c = check as MergeCheck | null;
    const problems = [...(c?.problems ?? [])];
    if (injected.length < 2)
      problems.push(`only ${injected.length} of 2 orchestrator kills landed`);
    return row(this, o, run, "SIGKILL of the orchestrator while a merge waits, twice", injected, {
      notes: [
        c?.git
          ? `merge queue: ${c.merged} merged, ${c.conflicted} conflicted; each task once on the branch`
          : "the mission had no git workspace: no merges to check",
        `orchestrator restarts by the launcher: ${run.restarts.orchestrator}`,
      ],
      problems,
    });
  },
};

export const natsRestart: Scenario = {
  id: "nats-restart",
  title: "nats-server SIGKILLed and restarted",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 12 : 100;
    const downMs = quick ? 1500 : 3000;
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks across a NATS restart`,
        plan: runStepPlan({ tasks, agents: AGENTS, waves: quick ? 4 : 10, stepS: 0.3 }),
        agents: AGENTS,
        replicas: 2,
        timeoutMs: quick ? 150_000 : 600_000,
      }),
      (ctx) => restartNatsAt(ctx, { fraction: 0.4, downMs }),
    );
    return row(
      this,
      o,
      run,
      `SIGKILL of nats-server at 40% of the tasks, restarted on the same port and store after ${downMs / 1000} s`,
      injected,
      { problems: injected.length ? [] : ["the restart never happened"] },
    );
  },
};

export const clusterNodeLoss: Scenario = {
  id: "cluster-node-loss",
  title: "3-node NATS cluster, one node SIGKILLed",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 12 : 100;
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks on a 3-node cluster losing a node`,
        plan: runStepPlan({ tasks, agents: AGENTS, waves: quick ? 4 : 10, stepS: 0.3 }),
        agents: AGENTS,
        replicas: 2,
        cluster: true,
        timeoutMs: quick ? 180_000 : 600_000,
      }),
      (ctx) => killClusterNodeAt(ctx, { fraction: 0.4 }),
    );
    return row(
      this,
      o,
      run,
      "SIGKILL of the node leading SQUAD_TASKS at 40% of the tasks (R3 streams and KV), left down",
      injected,
      { problems: injected.length ? [] : ["no node was killed"] },
    );
  },
};

export const modelFaults: Scenario = {
  id: "model-faults",
  title: "model server failing 30% of calls",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 6 : 40;
    const maxAttempts = 5;
    const timeoutS = quick ? 5 : 15;
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} model-driven tasks against a failing model server`,
        plan: modelPlan({ tasks, agents: AGENTS, timeoutS, maxAttempts }),
        agents: AGENTS,
        replicas: 2,
        model: {
          faultRate: 0.3,
          seed: o.seed,
          toolCommand: sideEffectCommand,
          hangMs: (timeoutS + 2) * 1000,
        },
        // A model outage is retried by redelivery: start at 1 s (doubling), not the default 2 s.
        env: { SWARM_MODEL_RETRY_MS: "1000" },
        timeoutMs: quick ? 180_000 : 900_000,
        mayFail: true,
      }),
      async () => [] as Injection[],
    );
    const m = run.model!;
    const perTask = Object.entries(m.perTask).filter(([k]) => k.startsWith(`${run.missionId}/`));
    const counts = perTask.map(([, n]) => n);
    const max = Math.max(0, ...counts);
    const mean = counts.length ? counts.reduce((a, b) => a + b, 0) / counts.length : 0;
    // The bound of the design: attempts x deliveries (max_deliver 5) x 2 turns (+1 nudge) x 3 tries.
    const bound = maxAttempts * 5 * 3 * 3;
    const faults = m.faults.http_500 + m.faults.timeout + m.faults.malformed;
    const injections: Injection[] = Array.from({ length: faults }, () => ({
      at: 0,
      what: "fault",
    }));
    const problems =
      max > bound ? [`a task made ${max} model calls (bound ${bound}): a retry storm`] : [];
    const mission = run.account;
    if (mission.status === "failed" && !mission.failures.length && !mission.reason)
      problems.push("the mission failed without reasons");
    return row(
      this,
      o,
      run,
      `${Math.round((faults / Math.max(1, m.calls)) * 100)}% of ${m.calls} model calls failed: ` +
        `${m.faults.http_500} HTTP 500, ${m.faults.timeout} hung (timeout), ${m.faults.malformed} malformed`,
      [...injections, ...injected],
      {
        notes: [
          `model calls per task: max ${max}, mean ${mean.toFixed(1)} (bound ${bound})`,
          ...(mission.status === "failed" ? [`failed with: ${mission.reason}`] : []),
        ],
        problems,
        details: { model: m, maxCallsPerTask: max, meanCallsPerTask: mean, bound },
      },
      false,
    );
  },
};

export const badInput: Scenario = {
  id: "bad-input",
  title: "bad-input corpus while a mission runs",
  run(o) {
    return runBadInputScenario(this, o);
  },
};

export const SCENARIOS: readonly Scenario[] = [
  workerKills,
  orchestratorKills,
  orchestratorKillsMidMerge,
  natsRestart,
  clusterNodeLoss,
  modelFaults,
  badInput,
  attacker,
];
