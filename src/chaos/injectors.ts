/**
 * The faults a scenario injects into a running mission (mission-run.ts
 * gives them the context). Each returns the list of what it did and when,
 * which the table counts.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openJetStreamManager, retryTransient } from "../bus/index.ts";
import { STREAMS } from "../schema/index.ts";
import { GATE_FILE } from "./mission-briefs.ts";
import type { MissionRunContext, SwarmProc } from "./mission-run.ts";
import { PATIENT } from "./patient-retry.ts";
import type { Prng } from "./prng.ts";
import { killIfSame, within } from "./processes.ts";

export interface Injection {
  /** ms since the injector started. */
  at: number;
  what: string;
}

/** Let the mission's gate task (mission-briefs.ts) finish. */
export async function openGate(ctx: MissionRunContext): Promise<void> {
  await writeFile(path.join(ctx.witness, GATE_FILE), "open\n");
}

/** Sleep up to `ms`, cut short when the mission ends. */
async function pause(ctx: MissionRunContext, ms: number): Promise<void> {
  await within(ctx.ended, ms);
}

async function sigkill(p: SwarmProc): Promise<boolean> {
  return killIfSame({ pid: p.pid, ppid: 0, state: "S", argv: p.argv }, "SIGKILL");
}

/**
 * SIGKILL a random worker replica every `everyMs` until the mission ends.
 * Only replicas up for `minUptimeMs` are picked: the launcher gives up on a
 * child that dies again and again right after starting (a crash loop), and
 * a kill is not a crash loop. After each kill it waits (up to
 * `replacementMs`) until the launcher's replacement shows, so the count of
 * restarts can be checked against the count of kills.
 */
export async function killWorkersEvery(
  ctx: MissionRunContext,
  o: {
    everyMs: number;
    minUptimeMs: number;
    prng: Prng;
    /** Open the mission's gate (gateTask) after this many kills. */
    gateAfterKills?: number;
    /**
     * Stop killing once the gate is open. Without it, a kill can land while
     * the launcher is already stopping its swarm, which then (rightly) does
     * not restart it.
     */
    stopAtGate?: boolean;
    replacementMs?: number;
  },
): Promise<Injection[]> {
  const done: Injection[] = [];
  const t0 = Date.now();
  while (!ctx.over()) {
    if (o.gateAfterKills !== undefined && done.length >= o.gateAfterKills) {
      await openGate(ctx);
      if (o.stopAtGate) break;
    }
    await pause(ctx, o.everyMs);
    if (ctx.over()) break;
    const now = Date.now();
    const workers = (await ctx.swarm()).filter((p) => p.role === "worker");
    const eligible = workers.filter((p) => now - p.firstSeenAt >= o.minUptimeMs);
    if (!eligible.length) continue;
    const victim = o.prng.pick(eligible);
    if (await sigkill(victim)) {
      done.push({ at: now - t0, what: `SIGKILL ${victim.agent} replica pid ${victim.pid}` });
      ctx.log(
        `killed ${victim.agent} replica ${victim.pid} (${ctx.observer.completed(ctx.missionId)}/${ctx.taskCount} done)`,
      );
      await waitReplacement(ctx, victim, workers.length, o.replacementMs ?? 15_000);
    }
  }
  return done;
}

/** Until the replica count is back to `count` with the victim gone (or the mission ended). */
async function waitReplacement(
  ctx: MissionRunContext,
  victim: SwarmProc,
  count: number,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ctx.over() && Date.now() < deadline) {
    const workers = (await ctx.swarm()).filter((p) => p.role === "worker");
    if (workers.length >= count && !workers.some((p) => p.pid === victim.pid)) return;
    await pause(ctx, 200);
  }
  ctx.log(`replica ${victim.pid} of ${victim.agent} not replaced within ${ms} ms`);
}

/**
 * SIGKILL the orchestrator once each fraction of the tasks has completed
 * (e.g. [1/3, 2/3]); the launcher restarts it, and the new one must take
 * the mission over once the dead one's mission lease lapses. Each kill
 * waits until the previous victim was replaced, so it hits a new process.
 */
export async function killOrchestratorAt(
  ctx: MissionRunContext,
  o: {
    fractions: number[];
    /** Kill only while an attempt waits for the merge queue (git workspaces): mid-merge. */
    midMerge?: boolean;
  },
): Promise<Injection[]> {
  const done: Injection[] = [];
  const t0 = Date.now();
  const killed = new Set<number>();
  for (const f of o.fractions) {
    const target = Math.max(1, Math.floor(ctx.taskCount * f));
    await ctx.observer.waitCompleted(ctx.missionId, target, 10 * 60_000);
    if (ctx.over()) {
      ctx.log(`the mission ended before ${target}/${ctx.taskCount} tasks completed: no kill`);
      break;
    }
    const merging = o.midMerge ? await ctx.observer.waitMerging(ctx.missionId, 60_000) : false;
    if (o.midMerge && !merging) ctx.log("no merge was waiting (a mission without a workspace?)");
    let victim: SwarmProc | undefined;
    while (!ctx.over() && !victim) {
      victim = (await ctx.swarm()).find((p) => p.role === "orchestrator" && !killed.has(p.pid));
      if (!victim) await pause(ctx, 200);
    }
    if (!victim || ctx.over()) break;
    if (await sigkill(victim)) {
      killed.add(victim.pid);
      const n = ctx.observer.completed(ctx.missionId);
      done.push({
        at: Date.now() - t0,
        what: `SIGKILL orchestrator pid ${victim.pid} at ${n}/${ctx.taskCount}${merging ? " (mid-merge)" : ""}`,
      });
      ctx.log(`killed the orchestrator ${victim.pid} (${n}/${ctx.taskCount} done)`);
    }
  }
  return done;
}

/**
 * Once `fraction` of the tasks completed: SIGKILL the nats-server, keep it
 * down `downMs`, start it again on the same port and store.
 */
export async function restartNatsAt(
  ctx: MissionRunContext,
  o: { fraction: number; downMs: number },
): Promise<Injection[]> {
  const t0 = Date.now();
  await ctx.observer.waitCompleted(
    ctx.missionId,
    Math.max(1, Math.floor(ctx.taskCount * o.fraction)),
    10 * 60_000,
  );
  if (ctx.over()) return [];
  const server = ctx.nats.servers[0]!;
  const n = ctx.observer.completed(ctx.missionId);
  await server.kill();
  ctx.log(`nats-server SIGKILLed (${n}/${ctx.taskCount} done); down for ${o.downMs} ms`);
  await sleep(o.downMs);
  await server.start();
  ctx.log("nats-server started again on the same port and store");
  return [
    {
      at: Date.now() - t0,
      what: `SIGKILL nats-server at ${n}/${ctx.taskCount}, restarted after ${o.downMs} ms`,
    },
  ];
}

/**
 * Once `fraction` of the tasks completed: SIGKILL the cluster node that
 * leads SQUAD_TASKS (the hard case: the work queue must elect a new leader)
 * and leave it down for the rest of the mission.
 */
export async function killClusterNodeAt(
  ctx: MissionRunContext,
  o: { fraction: number },
): Promise<Injection[]> {
  const t0 = Date.now();
  await ctx.observer.waitCompleted(
    ctx.missionId,
    Math.max(1, Math.floor(ctx.taskCount * o.fraction)),
    10 * 60_000,
  );
  if (ctx.over()) return [];
  const jsm = await openJetStreamManager(ctx.observer.nc, { check: false });
  // A busy cluster may time an API call out: ask again, briefly.
  const leader = await retryTransient(() => jsm.streams.info(STREAMS.tasks), PATIENT).then(
    (info) => info.cluster?.leader,
  );
  const victim = ctx.nats.servers.find((s) => s.name === leader) ?? ctx.nats.servers[0]!;
  const n = ctx.observer.completed(ctx.missionId);
  await victim.kill();
  ctx.log(
    `cluster node ${victim.name} (leader of ${STREAMS.tasks}) SIGKILLed at ${n}/${ctx.taskCount}`,
  );
  return [
    {
      at: Date.now() - t0,
      what: `SIGKILL node ${victim.name} (leader of ${STREAMS.tasks}) at ${n}/${ctx.taskCount}, left down`,
    },
  ];
}
