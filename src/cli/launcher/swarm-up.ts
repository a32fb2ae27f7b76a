/**
 * `swarm up`: the orchestrator and N replicas of each roster agent (or the
 * listed ones), supervised, until SIGINT/SIGTERM; NATS started too when none
 * answers (same rules as deploy). Prints one line per start, exit, restart
 * and replica online/offline; the processes' own logs go to
 * `<workspace>/logs/<name>.log`.
 */
import { createWriteStream } from "node:fs";
import { mkdir, realpath } from "node:fs/promises";
import path from "node:path";
import { styleText } from "node:util";
import { connectBus, watchEvents, type EventWatch, type NatsConnection } from "../../bus/index.ts";
import { readEnv } from "../../config.ts";
import { openRootToUser } from "../../tools/sandbox.ts";
import { sandboxUser } from "../../tools/sandbox-user.ts";
import { BadInputError, ExitCode, errorMessage } from "../../errors.ts";
import { silentLogger } from "../../log.ts";
import { loadRoster } from "../../workers/roster.ts";
import { formatEventLine } from "../event-line.ts";
import { onShutdownSignal } from "../signals.ts";
import type { SupervisorEvent } from "../supervisor.ts";
import { ensureNats, type NatsEndpoint } from "./local-nats.ts";
import { describeSupervisorEvent } from "./progress-model.ts";
import { canColor } from "./progress-view.ts";
import { launchSwarm, type LaunchedSwarm } from "./swarm-launcher.ts";
import { provisionAsAdmin } from "./swarm-admin.ts";
import { launcherConnectOptions } from "./swarm-credentials.ts";

export interface SwarmUpOptions {
  replicas: number;
  /** Roster agents to run; default all. */
  agents?: readonly string[];
  natsUrl: string;
  natsExplicit: boolean;
  /** The swarm's state directory (identities, the local server's record). */
  stateDir: string;
  /** Run or accept NATS without authentication (`--insecure-nats`, SWARM_NATS_AUTH=none). */
  insecureNats: boolean;
  /** A NATS credential was given (environment or URL). */
  credentialGiven: boolean;
  workspaceRoot: string;
  rosterPath: string | undefined;
  out?: NodeJS.WriteStream;
}

/** Runs until a signal (exit 0) or until a child keeps crashing (exit 3, or 2 for bad config). */
export async function runSwarmUp(opts: SwarmUpOptions): Promise<number> {
  const roster = await loadRoster(opts.rosterPath);
  const known = roster.agents.map((a) => a.name);
  const agents = opts.agents ?? known;
  if (agents.length === 0) throw new BadInputError("--agents lists no agent");
  const unknown = agents.filter((a) => !known.includes(a));
  if (unknown.length) {
    throw new BadInputError(
      `--agents: ${unknown.map((a) => JSON.stringify(a)).join(", ")} not in the roster (${known.join(", ")})`,
    );
  }

  const out = opts.out ?? process.stdout;
  const color = canColor(out);
  const line = (tag: string, text: string) => {
    const time = new Date().toISOString().slice(11, 23);
    const t = tag.padEnd(18);
    out.write(
      color
        ? `${styleText("dim", time, { validateStream: false })} ${styleText("yellow", t, { validateStream: false })} ${text}\n`
        : `${time} ${t} ${text}\n`,
    );
  };

  const logDir = path.join(opts.workspaceRoot, "logs");
  await mkdir(logDir, { recursive: true });
  // Workers would each refuse a workspace their sandbox user cannot reach (exit 2, restarted
  // in a loop by the supervisor): say so once, now, before starting anything.
  await openRootToUser(await realpath(opts.workspaceRoot), sandboxUser(process.env));
  const natsLog = createWriteStream(path.join(logDir, "nats-server.log"), { flags: "a" });
  natsLog.on("error", () => undefined);

  let stopRequested: (why: { code: number; message?: string }) => void = () => undefined;
  const stopped = new Promise<{ code: number; message?: string }>((r) => (stopRequested = r));
  onShutdownSignal(async (signal) => {
    line("up", `${signal}: stopping`);
    stopRequested({ code: ExitCode.ok });
  });
  const onSupervisor = (e: SupervisorEvent) => {
    line("supervisor", describeSupervisorEvent(e));
    if (e.type === "gave_up") {
      stopRequested({
        code: e.code === ExitCode.badInput ? ExitCode.badInput : ExitCode.infrastructure,
        message: `${e.name} keeps crashing; see ${path.join(logDir, `${e.name}.log`)}`,
      });
    }
  };

  let endpoint: NatsEndpoint | null = null;
  let swarm: LaunchedSwarm | null = null;
  let nc: NatsConnection | null = null;
  let watch: EventWatch | null = null;
  try {
    endpoint = await ensureNats({
      url: opts.natsUrl,
      explicit: opts.natsExplicit,
      storeDir: path.join(opts.workspaceRoot, ".nats"),
      stateDir: opts.stateDir,
      agents: known,
      insecure: opts.insecureNats,
      credentialGiven: opts.credentialGiven,
      output: natsLog,
      onEvent: onSupervisor,
    });
    line("up", `nats ${endpoint.url} (${endpoint.origin})`);
    for (const w of endpoint.warnings) {
      line("up", `WARNING: ${w}`);
      process.stderr.write(`swarm up: WARNING: ${w}\n`);
    }
    line("up", `logs ${logDir}`);
    const env = readEnv();
    await provisionAsAdmin(endpoint, agents, env, silentLogger);
    swarm = await launchSwarm({
      natsUrl: endpoint.url,
      credentials: endpoint.credentials,
      workspaceRoot: opts.workspaceRoot,
      rosterPath: opts.rosterPath,
      agents,
      replicas: opts.replicas,
      logDir,
      onEvent: onSupervisor,
    });
    const ours = swarm.supervisor;
    // It only watches the replicas come and go: the watcher role.
    nc = await connectBus({
      ...launcherConnectOptions(
        endpoint.credentials,
        { role: "watcher" },
        endpoint.url,
        "swarm-up",
        env,
      ),
      log: silentLogger,
    });
    const instances = new Set<string>();
    watch = watchEvents(nc, {
      subject: "squad.status.>",
      onEvent: (e) => {
        if (e.type === "agent_online" && ours.pids().some((p) => p.pid === e.payload.pid)) {
          instances.add(e.payload.instance);
          out.write(`${formatEventLine(e, color)}\n`);
        } else if (e.type === "agent_offline" && instances.has(e.payload.instance)) {
          out.write(`${formatEventLine(e, color)}\n`);
        }
      },
    });
    await watch.ready;
    line(
      "up",
      `running: orchestrator and ${agents.length}×${opts.replicas} replicas (Ctrl-C stops)`,
    );
    const why = await stopped;
    if (why.message) process.stderr.write(`swarm up: ${why.message}\n`);
    return why.code;
  } finally {
    const step = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`swarm up: while stopping: ${errorMessage(err)}\n`);
      }
    };
    // The replicas first, while the watch still shows them going offline.
    await step(async () => swarm?.stop());
    await step(async () => watch?.stop());
    await step(async () => {
      if (nc && !nc.isClosed()) await nc.drain();
    });
    await step(async () => endpoint?.local?.stop());
    natsLog.end();
    line("up", "stopped");
  }
}
