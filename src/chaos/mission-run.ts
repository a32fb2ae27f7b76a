/**
 * One chaos mission, run for real through the launcher: the runner starts
 * its own nats-server (or cluster of three), and optionally a fault-injecting
 * fake model server; then `node src/cli/main.ts deploy <brief> --nats URL
 * --workspace DIR --replicas N --json` (what `scripts/deploy-swarm` runs)
 * starts the orchestrator and the replicas as supervised children, submits
 * the brief and follows it. While the mission runs, the scenario's injector
 * gets the context (the swarm's processes, the servers, the bus) to do its
 * damage. At the end the mission is accounted for from its recorded events
 * and its run logs (accounting.ts).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { retryTransient } from "../bus/index.ts";
import type { PlanInput } from "../schema/plan.ts";
import { accountMission, readRunLines, type MissionAccount } from "./accounting.ts";
import {
  startFaultModelServer,
  type FaultModelOptions,
  type FaultModelServer,
  type ModelCallStats,
} from "./fault-model.ts";
import { briefFor, RUNS_DIR, withWitness } from "./mission-briefs.ts";
import { startNats, startNatsCluster, type ChaosNats } from "./nats-servers.ts";
import { PATIENT } from "./patient-retry.ts";
import { startObserver, type Observer } from "./observer.ts";
import {
  CLI_ENTRY,
  COMPILED_CLI_ENTRY,
  descendantsOf,
  spawnSwarm,
  stopTree,
  within,
  type Spawned,
} from "./processes.ts";

export interface SwarmProc {
  pid: number;
  role: "orchestrator" | "worker";
  agent: string | null;
  argv: string[];
  /** When the runner first saw it (ms epoch): its uptime, near enough. */
  firstSeenAt: number;
}

export interface MissionRunSetup {
  title: string;
  plan: PlanInput;
  /** Agents of the plan (the launcher starts `replicas` of each). */
  agents: readonly string[];
  replicas: number;
  /** Three nats-servers and R3 streams, instead of one server. */
  cluster?: boolean;
  /** Tuning for every process (SWARM_ACK_WAIT_MS, SWARM_MISSION_LEASE_S...). */
  env?: Record<string, string>;
  /** Start a fake model server with faults and point the workers at it. */
  model?: FaultModelOptions;
  /** The mission must end within this. */
  timeoutMs: number;
  /** A mission that fails (with its reasons) is an expected outcome, not a reason to keep the logs. */
  mayFail?: boolean;
  /** Keep the run's directory (logs, workspace) even when all went well. */
  keep?: boolean;
  /** Progress notes (scripts/chaos prints them on stderr). */
  log?: (line: string) => void;
}

export interface MissionRunContext {
  missionId: string;
  /** SWARM_WORKSPACE of the swarm: the mission's files in `<workspace>/<mission>`, logs in `logs/`. */
  workspace: string;
  /** The witness directory (mission-briefs.ts): run logs and the gate file. */
  witness: string;
  nats: ChaosNats;
  observer: Observer;
  taskCount: number;
  /** Resolves when the mission has its final event (or the run timed out). */
  ended: Promise<void>;
  over(): boolean;
  /** The swarm's processes now (a fresh read of the launcher's process tree). */
  swarm(): Promise<SwarmProc[]>;
  log(line: string): void;
}

export interface MissionRunResult {
  missionId: string;
  account: MissionAccount;
  /** From the launcher's start to the mission's final event. */
  durationMs: number;
  deployExit: number | null;
  /** The launcher's `--json` line, parsed. */
  deploySummary: Record<string, unknown> | null;
  /** Processes started beyond the first of each (a restart after a crash or a kill). */
  restarts: { orchestrator: number; workers: number };
  model: ModelCallStats | null;
  /** Where the logs are (kept when the run did not go as expected, or with `keep`). */
  dir: string;
  kept: boolean;
}

export const SWARM_MODEL_SPEC = "ollama:chaos-fake";

function roleOf(argv: readonly string[]): Pick<SwarmProc, "role" | "agent"> | null {
  const i = argv.findIndex((a) => a === CLI_ENTRY || a === COMPILED_CLI_ENTRY);
  if (i < 0) return null;
  if (argv[i + 1] === "orchestrator") return { role: "orchestrator", agent: null };
  if (argv[i + 1] === "worker") {
    const a = argv.indexOf("--agent");
    return { role: "worker", agent: a > 0 ? (argv[a + 1] ?? null) : null };
  }
  return null;
}

export async function runMission<T>(
  setup: MissionRunSetup,
  inject: (ctx: MissionRunContext) => Promise<T>,
): Promise<{ run: MissionRunResult; injected: T }> {
  const log = setup.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(os.tmpdir(), "squad-chaos-"));
  // The workspace is below it: the sandbox user (an unprivileged uid) must pass through.
  await chmod(dir, 0o711);
  const workspace = path.join(dir, "ws");
  // Where every execution leaves its line (mission-briefs.ts): outside every checkout,
  // writable by the sandbox user, the one directory the tasks share.
  const witness = path.join(dir, "witness");
  await mkdir(witness);
  await chmod(witness, 0o777);
  let nats: ChaosNats | null = null;
  let model: FaultModelServer | null = null;
  let observer: Observer | null = null;
  let deploy: Spawned | null = null;
  let poller: NodeJS.Timeout | null = null;
  let ok = false;
  try {
    nats = setup.cluster ? await startNatsCluster(3) : await startNats();
    log(`nats: ${nats.urls.join(", ")}`);
    if (setup.model) {
      const toolCommand = setup.model.toolCommand;
      model = await startFaultModelServer({
        ...setup.model,
        toolCommand: (taskId) => withWitness(toolCommand(taskId), witness),
      });
      log(`fake model server: ${model.url} (${Math.round(setup.model.faultRate * 100)}% faults)`);
    }
    observer = await startObserver(nats.urls);

    const briefFile = path.join(dir, "brief.md");
    await writeFile(
      briefFile,
      withWitness(briefFor(setup.title, setup.plan, setup.agents), witness),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: undefined,
      SWARM_WORKSPACE: undefined,
      SWARM_ROSTER: undefined,
      SWARM_LOG_FORMAT: "json",
      SWARM_LOG_LEVEL: "info",
      ...(setup.cluster ? { SWARM_STREAM_REPLICAS: "3" } : {}),
      ...(model ? { OLLAMA_HOST: model.url, SWARM_WORKER_MODEL: SWARM_MODEL_SPEC } : {}),
      SWARM_TASK_SHARED_DIR: witness,
      ...setup.env,
    };
    const startedAt = Date.now();
    deploy = spawnSwarm(
      [
        "deploy",
        briefFile,
        "--nats",
        nats.urls.join(","),
        "--workspace",
        workspace,
        "--replicas",
        String(setup.replicas),
        "--json",
      ],
      { env, logFile: path.join(dir, "deploy.log") },
    );
    log(`launcher: pid ${deploy.pid}, logs in ${workspace}/logs`);
    const missionId = await Promise.race([
      observer.nextSubmission(120_000),
      deploy.exited.then(({ code }) => {
        throw new Error(
          `the launcher exited (code ${code}) before submitting; see ${dir}/deploy.log`,
        );
      }),
    ]);
    log(`mission ${missionId} submitted`);

    // The launcher's process tree, read every 300 ms: who runs, and how often each was restarted.
    const seen = new Map<number, SwarmProc>();
    const scan = async (): Promise<SwarmProc[]> => {
      const now = Date.now();
      const procs: SwarmProc[] = [];
      for (const p of await descendantsOf(deploy!.pid)) {
        // The launcher's own children only: a replica's child between fork and exec
        // still shows the replica's command line for a moment.
        if (p.state === "Z" || p.ppid !== deploy!.pid) continue;
        const role = roleOf(p.argv);
        if (!role) continue;
        const known = seen.get(p.pid);
        const proc = known ?? { pid: p.pid, argv: p.argv, firstSeenAt: now, ...role };
        if (!known) seen.set(p.pid, proc);
        procs.push(proc);
      }
      return procs;
    };
    let scanning = false;
    poller = setInterval(() => {
      if (scanning) return;
      scanning = true;
      void scan()
        .catch(() => [])
        .finally(() => (scanning = false));
    }, 300);

    let over = false;
    const timeoutMs = setup.timeoutMs;
    const finalPromise = observer.waitFinal(missionId, timeoutMs).then((final) => {
      over = true;
      return final;
    });
    const ctx: MissionRunContext = {
      missionId,
      workspace,
      witness,
      nats,
      observer,
      taskCount: setup.plan.waves.reduce((n, w) => n + w.tasks.length, 0),
      ended: finalPromise.then(() => undefined),
      over: () => over,
      swarm: scan,
      log,
    };
    const [final, injected] = await Promise.all([finalPromise, inject(ctx)]);
    const durationMs = Date.now() - startedAt;
    log(
      final ? `mission ${final.type} after ${durationMs} ms` : `no final event in ${timeoutMs} ms`,
    );

    // The launcher stops its swarm once it has the final event; give it time, then make sure.
    const exit = await within(deploy.exited, final ? 45_000 : 1);
    if (!exit) await stopTree(deploy, 15_000);
    clearInterval(poller);
    poller = null;
    const deployExit = exit?.code ?? null;

    const events = await retryTransient(() => observer!.events(missionId), PATIENT);
    const runLines = await readRunLines(path.join(witness, RUNS_DIR));
    const taskIds = setup.plan.waves.flatMap((w) => w.tasks.map((t) => t.id));
    const account = accountMission({ taskIds, events, runLines });
    const all = [...seen.values()];
    const workersExpected = new Set(setup.agents).size * setup.replicas;
    const restarts = {
      orchestrator: Math.max(0, all.filter((p) => p.role === "orchestrator").length - 1),
      workers: Math.max(0, all.filter((p) => p.role === "worker").length - workersExpected),
    };
    // Anything short of a clean completion keeps the logs for a person to read.
    const failedAsAllowed = setup.mayFail === true && account.status === "failed";
    ok =
      (account.status === "completed" || failedAsAllowed) &&
      account.lost === 0 &&
      account.unexplainedExecutions === 0 &&
      (deployExit === 0 || (failedAsAllowed && deployExit === 1));
    const kept = setup.keep === true || !ok;
    return {
      run: {
        missionId,
        account,
        durationMs,
        deployExit,
        deploySummary: parseSummary(deploy.stdout()),
        restarts,
        model: model?.stats() ?? null,
        dir,
        kept,
      },
      injected,
    };
  } finally {
    if (poller) clearInterval(poller);
    if (deploy?.running()) await stopTree(deploy, 15_000);
    await observer?.close().catch(() => undefined);
    await model?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    if (ok && !setup.keep) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    else log(`run directory kept: ${dir}`);
  }
}

function parseSummary(stdout: string): Record<string, unknown> | null {
  const line = stdout.trim().split("\n").at(-1);
  if (!line) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}
