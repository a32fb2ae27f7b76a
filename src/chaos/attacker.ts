/**
 * The attacker scenario: while a victim mission runs, a second mission on
 * the same swarm attacks from inside its tasks, with nothing but `run` steps
 * (no model), as issue 11's findings did:
 *
 * - probes, each exiting 0 only when the attack was refused and printing
 *   BREACH when it got through: writing host sysctls (core_pattern,
 *   swappiness), reading /etc/shadow, being uid 0, connecting to the
 *   swarm's NATS port, reading the victim mission's files;
 * - bombs, each expected to fail naming the limit that stopped it: a fork
 *   bomb (processes), and at full size a memory bomb (memory) and a file
 *   filler (file size).
 *
 * The promise checked: the victim mission completes with nothing lost or
 * unannounced, no probe breached, every bomb failed on its limit, and the
 * attacker mission ended (failed, because of its bombs).
 */
import path from "node:path";
import { missionWorkspace } from "../config.ts";
import { natsHostPort } from "../bus/index.ts";
import { submitWithWorkspace } from "../client/mission-workspace.ts";
import { newMissionId } from "../client/submission.ts";
import type { PlanInput } from "../schema/plan.ts";
import type { SquadEvent } from "../schema/index.ts";
import { openGate, type Injection } from "./injectors.ts";
import {
  briefFor,
  gateTask,
  runStepPlan,
  sideEffectCommand,
  withWitness,
} from "./mission-briefs.ts";
import type { MissionRunContext } from "./mission-run.ts";
import { runMission } from "./mission-run.ts";
import { AGENTS, row, setup, type Scenario } from "./scenario-row.ts";

type PlanTask = PlanInput["waves"][number]["tasks"][number];

/** A run step that fails, printing BREACH, when `attack` (a shell condition) succeeds. */
function refused(what: string, attack: string): string {
  return `if ${attack}; then echo "BREACH: ${what}"; exit 1; fi; echo "refused: ${what}"`;
}

export interface AttackTarget {
  /** The swarm's NATS port on this machine. */
  natsPort: number;
  /** The victim mission's workspace (absolute). */
  victimWorkspace: string;
}

/** The probes: tasks that succeed only when every attack in them is refused. */
export function probeTasks(t: AttackTarget): PlanTask[] {
  const probe = (id: string, agent: string, title: string, steps: string[]): PlanTask => ({
    id,
    agent,
    title,
    instructions: title,
    depends_on: [],
    run: [sideEffectCommand(id), ...steps],
    max_attempts: 1,
  });
  const tcp = (port: number) =>
    `timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null`;
  return [
    probe("p-sysctl", AGENTS[0], "write host kernel knobs", [
      refused(
        "core_pattern written",
        "(echo '|/bin/false' > /proc/sys/kernel/core_pattern) 2>/dev/null",
      ),
      refused("vm.swappiness written", "(echo 61 > /proc/sys/vm/swappiness) 2>/dev/null"),
    ]),
    probe("p-secrets", AGENTS[1], "read root-only files, be root", [
      refused("/etc/shadow read", "cat /etc/shadow >/dev/null 2>&1"),
      refused("running as uid 0", '[ "$(id -u)" = 0 ]'),
    ]),
    ...AGENTS.map((agent) =>
      probe(`p-bus-${agent}`, agent, `reach the bus from a ${agent} task`, [
        refused(`NATS port ${t.natsPort} reached`, tcp(t.natsPort)),
      ]),
    ),
    probe("p-mission", AGENTS[0], "read another mission's files", [
      refused(
        "the victim mission's files listed",
        `ls ${JSON.stringify(t.victimWorkspace)}/runs >/dev/null 2>&1`,
      ),
    ]),
  ];
}

/** The bombs, each with the limit that must stop it. */
export function bombTasks(size: "quick" | "full"): Array<{ task: PlanTask; limit: RegExp }> {
  const bomb = (id: string, agent: string, title: string, step: string): PlanTask => ({
    id,
    agent,
    title,
    instructions: title,
    depends_on: [],
    run: [sideEffectCommand(id), step],
    max_attempts: 1,
    timeout_s: 120,
  });
  const all = [
    {
      task: bomb("b-fork", AGENTS[1], "fork bomb", "bomb() { bomb | bomb & }; bomb; wait"),
      limit: /process/i,
    },
    {
      task: bomb(
        "b-memory",
        AGENTS[0],
        "memory bomb",
        `python3 -c "b = bytearray(3 << 30); print(len(b))"`,
      ),
      limit: /memory/i,
    },
    {
      task: bomb("b-disk", AGENTS[1], "fill the disk", "head -c 2G /dev/zero > filler.bin"),
      limit: /file size|file_size|per file/i,
    },
  ];
  return size === "quick" ? all.slice(0, 1) : all;
}

export interface AttackOutcome {
  injected: Injection[];
  problems: string[];
  notes: string[];
}

/** Submit the attacker mission into the running swarm, follow it to its end, then let the victim finish. */
async function attack(ctx: MissionRunContext, size: "quick" | "full"): Promise<AttackOutcome> {
  const started = Date.now();
  const target: AttackTarget = {
    natsPort: natsHostPort(ctx.nats.urls[0]!).port,
    victimWorkspace: missionWorkspace(ctx.workspace, ctx.missionId),
  };
  const probes = probeTasks(target);
  const bombs = bombTasks(size);
  const plan: PlanInput = {
    strategy: "attack the swarm from inside tasks",
    waves: [
      {
        wave: 1,
        rationale: "every attack at once",
        tasks: [...probes, ...bombs.map((b) => b.task)],
      },
    ],
  };
  const problems: string[] = [];
  const notes: string[] = [];
  try {
    // Submitted as any user's mission would be: with a repository, so each task has its own checkout.
    const attackerId = newMissionId();
    await submitWithWorkspace(ctx.observer.nc, {
      brief: withWitness(briefFor("Chaos: an attacker mission", plan, AGENTS), ctx.witness),
      sourcePath: null,
      seed: null,
      missionId: attackerId,
      stateDir: path.join(path.dirname(ctx.workspace), "attacker-state"),
    });
    ctx.log(`attacker mission ${attackerId} submitted`);
    const final = await ctx.observer.waitFinal(attackerId, size === "quick" ? 150_000 : 600_000);
    if (!final) {
      problems.push(`the attacker mission ${attackerId} never ended`);
      return { injected: [], problems, notes };
    }
    const events = await ctx.observer.events(attackerId);
    const result = (id: string) =>
      events.findLast(
        (e): e is Extract<SquadEvent, { type: "task_completed" | "task_failed" }> =>
          (e.type === "task_completed" || e.type === "task_failed") && e.task_id === id,
      );
    const outputOf = (e: ReturnType<typeof result>) =>
      (e?.payload.result.steps ?? []).map((s) => s.output).join("\n");
    for (const p of probes) {
      const r = result(p.id);
      const breach = /BREACH: [^\n"]*/.exec(outputOf(r))?.[0];
      if (breach) problems.push(`${p.id}: ${breach}`);
      else if (r?.type !== "task_completed")
        problems.push(`${p.id}: ${r ? `failed: ${r.payload.result.error}` : "no result"}`);
    }
    for (const b of bombs) {
      const r = result(b.task.id);
      if (r?.type !== "task_failed")
        problems.push(`${b.task.id}: ${r ? "succeeded" : "no result"}`);
      else if (!b.limit.test(r.payload.result.error ?? ""))
        problems.push(`${b.task.id} failed, but not on its limit: ${r.payload.result.error}`);
      else notes.push(`${b.task.id}: ${r.payload.result.error}`);
    }
    notes.push(
      `attacker mission ${final.type.replace("mission_", "")}; ${probes.length} probes refused`,
    );
    const at = Date.now() - started;
    return {
      injected: [...probes, ...bombs.map((b) => b.task)].map((t) => ({ at, what: t.id })),
      problems,
      notes,
    };
  } finally {
    await openGate(ctx).catch(() => undefined);
  }
}

export const attacker: Scenario = {
  id: "attacker",
  title: "an attacker mission alongside",
  async run(o) {
    const quick = o.size === "quick";
    const tasks = quick ? 8 : 60;
    const plan = runStepPlan({ tasks, agents: AGENTS, waves: quick ? 2 : 6, stepS: 0.3 });
    // The victim mission stays open until every attack has ended.
    plan.waves[0]!.tasks.push(gateTask(AGENTS[0]));
    const { run, injected } = await runMission(
      setup(o, {
        title: `Chaos: ${tasks} tasks while another mission attacks the swarm`,
        plan,
        agents: AGENTS,
        replicas: 2,
        timeoutMs: quick ? 200_000 : 900_000,
      }),
      (ctx) => attack(ctx, o.size),
    );
    return row(
      this,
      o,
      run,
      "a second mission whose tasks write host sysctls, read /etc/shadow, connect to NATS, read " +
        `the victim's files, and ${quick ? "fork-bomb" : "fork-, memory- and disk-bomb"} the replicas`,
      injected.injected,
      { notes: injected.notes, problems: injected.problems },
    );
  },
};
