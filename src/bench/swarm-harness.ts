/**
 * One benchmark's swarm: its own nats-server, the real orchestrator process,
 * real worker processes (`swarm worker --agent builder --replicas N
 * --concurrency C`), an event probe, and missions submitted as briefs with
 * explicit plans (written to files, then published as `swarm submit` does).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { prepareMissionWorkspace } from "../client/mission-workspace.ts";
import { newMissionId, submitMission } from "../client/submission.ts";
import { isMissionEndType } from "../schema/index.ts";
import type { PlanInput } from "../schema/plan.ts";
import { startEventProbe, type EventProbe, type ProbeRecord } from "./event-probe.ts";
import {
  startBenchNatsCluster,
  startBenchNatsServer,
  type BenchNatsServer,
} from "./nats-server.ts";
import { BENCH_AGENT, briefText } from "./plans.ts";
import { cpuSeconds, descendants, spawnSwarm, type SwarmProcess } from "./processes.ts";

export interface WorkerGroup {
  process: SwarmProcess;
  replicas: number;
  concurrency: number;
  /** Pids of the replica processes (the process itself when replicas is 1). */
  replicaPids(): Promise<number[]>;
  stop(): Promise<void>;
}

export interface MissionRun {
  missionId: string;
  /** performance.now() of the submit call, and of the events seen by the probe. */
  submittedAt: number;
  plannedAt: number;
  firstAssignedAt: number;
  finishedAt: number;
  /** Every event of the mission the probe saw, in arrival order. */
  records: ProbeRecord[];
}

export interface Harness {
  natsUrl: string;
  natsPid: number;
  /** Every nats-server's pid (the cluster's three with `cluster`). */
  natsPids: number[];
  nc: NatsConnection;
  probe: EventProbe;
  dir: string;
  orchestrator: SwarmProcess;
  /** Every orchestrator (`orchestrators` of startHarness; the first is `orchestrator`). */
  orchestrators: SwarmProcess[];
  /** The environment the swarm processes get (NATS_URL, workspace, stream replicas). */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  startWorkers(opts: {
    replicas: number;
    concurrency: number;
    env?: Record<string, string>;
  }): Promise<WorkerGroup>;
  /**
   * `workspace`: the mission gets a git repository, its base made from
   * `seed` (a directory, or null for an empty first commit) as a submitter
   * would; absent: no repository (the shared mission directory).
   */
  runMission(
    name: string,
    plan: PlanInput,
    timeoutMs: number,
    opts?: { workspace?: { seed: string | null } },
  ): Promise<MissionRun>;
  close(): Promise<void>;
}

/** Environment of the swarm processes: this benchmark's server and workspace, the default roster. */
export function swarmEnv(natsUrl: string, dir: string, extra: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NATS_URL: natsUrl,
    SWARM_WORKSPACE: path.join(dir, "workspace"),
    SWARM_LOG_FORMAT: "json",
    SWARM_LOG_LEVEL: process.env.SWARM_LOG_LEVEL ?? "info",
    ...extra,
  };
  // The default roster (it has `builder`), and no planner: every brief has its plan.
  delete env.SWARM_ROSTER;
  delete env.SWARM_PLANNER_MODEL;
  delete env.NATS_USER;
  delete env.NATS_PASS;
  return env;
}

export interface HarnessOptions {
  orchestratorNodeArgs?: string[];
  /** Orchestrator processes sharing the missions (leases). Default 1. */
  orchestrators?: number;
  /** A 3-node nats-server cluster with SWARM_STREAM_REPLICAS=3 instead of one server. */
  cluster?: boolean;
}

export async function startHarness(name: string, opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `squad-bench-${name}-`));
  // The workspace is below it: the sandbox user (an unprivileged uid) must pass through.
  await chmod(dir, 0o711);
  await mkdir(path.join(dir, "briefs"), { recursive: true });
  let server: BenchNatsServer | null = null;
  let nc: NatsConnection | null = null;
  const orchestrators: SwarmProcess[] = [];
  let probe: EventProbe | null = null;
  const groups = new Set<WorkerGroup>();
  const close = async () => {
    await Promise.all([...groups].map((g) => g.stop()));
    await Promise.all(orchestrators.map((o) => o.stop()));
    await probe?.stop();
    await nc?.close().catch(() => undefined);
    await server?.stop();
    if (!process.env.SWARM_BENCH_KEEP)
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    server = opts.cluster ? await startBenchNatsCluster(3) : await startBenchNatsServer();
    const natsUrl = server.url;
    const replicated: Record<string, string> = opts.cluster ? { SWARM_STREAM_REPLICAS: "3" } : {};
    const env = (extra: Record<string, string> = {}) =>
      swarmEnv(natsUrl, dir, { ...replicated, ...extra });
    nc = await connect({ servers: natsUrl, name: `bench-${name}` });
    probe = await startEventProbe(nc);
    // One after the other: the first provisions the streams, the others find them.
    for (let i = 0; i < (opts.orchestrators ?? 1); i++) {
      const o = await spawnSwarm(
        ["orchestrator"],
        env(),
        path.join(dir, i ? `orchestrator-${i + 1}.log` : "orchestrator.log"),
        opts.orchestratorNodeArgs ?? [],
      );
      orchestrators.push(o);
      await o.waitForLog(/"orchestrator ready"/, 30_000);
    }
    const orchestrator = orchestrators[0]!;
    const h: Harness = {
      natsUrl,
      natsPid: server.pid,
      natsPids: server.pids,
      nc,
      probe,
      dir,
      orchestrator,
      orchestrators,
      env,
      async startWorkers({ replicas, concurrency, env }) {
        const p = probe!;
        const from = p.records.length;
        const proc = await spawnSwarm(
          [
            "worker",
            "--agent",
            BENCH_AGENT,
            "--replicas",
            String(replicas),
            "--concurrency",
            String(concurrency),
          ],
          h.env(env),
          path.join(dir, `workers-${replicas}x${concurrency}-${Date.now()}.log`),
        );
        const online = (rs: ProbeRecord[]) =>
          rs.slice(from).filter((r) => r.type === "agent_online" && r.agent === BENCH_AGENT)
            .length >= replicas;
        try {
          await p.waitUntil(online, `${replicas} replicas online`, 30_000 + replicas * 5000);
        } catch (err) {
          await proc.stop(2000);
          throw new Error(`${(err as Error).message}\n${await proc.logTail()}`, { cause: err });
        }
        // agent_online goes out just before the pull loop opens its consumer.
        await sleep(300);
        const group: WorkerGroup = {
          process: proc,
          replicas,
          concurrency,
          async replicaPids() {
            return replicas === 1 ? [proc.pid] : descendants(proc.pid);
          },
          async stop() {
            groups.delete(group);
            await proc.stop();
          },
        };
        groups.add(group);
        return group;
      },
      async runMission(missionName, plan, timeoutMs, runOpts = {}) {
        const p = probe!;
        const text = briefText(`bench: ${missionName}`, plan);
        const sourcePath = path.join(dir, "briefs", `${missionName}.md`);
        await writeFile(sourcePath, text);
        const submittedAt = performance.now();
        const missionId = newMissionId();
        const workspace = runOpts.workspace
          ? (
              await prepareMissionWorkspace(nc!, {
                seed: runOpts.workspace.seed,
                missionId,
                stateDir: path.join(dir, "state"),
              })
            ).workspace
          : undefined;
        await submitMission(nc!, {
          brief: text,
          sourcePath,
          missionId,
          ...(workspace ? { workspace } : {}),
        });
        const final = await p.waitFor(
          (r) =>
            r.missionId === missionId &&
            isMissionEndType(r.type) &&
            r.subject === "squad.coordination",
          `mission ${missionName} (${missionId}) to end`,
          timeoutMs,
        );
        const records = p.records.filter((r) => r.missionId === missionId);
        if (final.type !== "mission_completed") {
          throw new Error(
            `mission ${missionName} failed: ${final.reason ?? "(no reason)"}\n` +
              `orchestrator log:\n${await orchestrator.logTail(2000)}`,
          );
        }
        const firstAssigned = records.find((r) => r.type === "task_assigned");
        const planned = records.find((r) => r.type === "mission_planned");
        // Records of earlier missions are no longer needed: keep the probe small.
        p.clear();
        return {
          missionId,
          submittedAt,
          plannedAt: planned?.at ?? submittedAt,
          firstAssignedAt: firstAssigned?.at ?? submittedAt,
          finishedAt: final.at,
          records,
        };
      },
      close,
    };
    return h;
  } catch (err) {
    await close();
    throw err;
  }
}

/** CPU seconds used so far by a process and everything below it (its shell steps included). */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const pids = [pid, ...(await descendants(pid))];
  const each = await Promise.all(pids.map((p) => cpuSeconds(p)));
  return each.reduce((sum, c) => sum + (c ? c.own + c.children : 0), 0);
}
