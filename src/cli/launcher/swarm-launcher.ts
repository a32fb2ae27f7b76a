/**
 * The swarm as child processes: one orchestrator and N replicas of each
 * agent, each a separate `swarm` process (one can die alone), supervised
 * (restarted with backoff), with its logs in `<workspace>/logs/<name>.log`
 * rather than on the terminal, where the progress view draws.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";
import type { Brief } from "../../orchestrator/brief.ts";
import type { Roster } from "../../workers/roster.ts";
import { PARENT_PID_ENV } from "../signals.ts";
import { selfCommand } from "../../client/self-command.ts";
import { Supervisor, type SupervisorEvent } from "../supervisor.ts";
import { childCredentialEnv, type SwarmCredentials } from "./swarm-credentials.ts";

export interface SwarmLaunchOptions {
  natsUrl: string;
  /** Each child's own identity, or the credential the user gave (src/cli/launcher/swarm-credentials.ts). */
  credentials?: SwarmCredentials;
  workspaceRoot: string;
  rosterPath: string | undefined;
  /** Roster agents to run replicas of. */
  agents: readonly string[];
  replicas: number;
  /** Default `<workspaceRoot>/logs`. */
  logDir?: string;
  /** Also run an orchestrator. Default true. */
  orchestrator?: boolean;
  onEvent?: (e: SupervisorEvent) => void;
  /** Crashes in a row soon after start before a child is given up on. Default 5. */
  maxQuickRestarts?: number;
}

export interface LaunchedSwarm {
  supervisor: Supervisor;
  /** Child name → its log file. */
  logFiles: Record<string, string>;
  /** SIGTERM every child (workers drain), SIGKILL after `graceMs`; close the logs. */
  stop(graceMs?: number): Promise<void>;
}

/** `builder-2`: the second replica of builder (a child name and its log file's name). */
export function replicaName(agent: string, n: number): string {
  return `${agent}-${n}`;
}

/**
 * The agents a brief needs: those its explicit plan assigns work to, else the
 * brief's `agents`, else the whole roster (the planner may pick any).
 */
export function agentsForBrief(brief: Pick<Brief, "plan" | "agents">, roster: Roster): string[] {
  if (brief.plan) {
    const seen = new Set<string>();
    for (const w of brief.plan.waves) for (const t of w.tasks) seen.add(t.agent);
    return [...seen];
  }
  return brief.agents ? [...brief.agents] : roster.agents.map((a) => a.name);
}

/** Start the orchestrator and the replicas; returns at once (children start in the background). */
export async function launchSwarm(opts: SwarmLaunchOptions): Promise<LaunchedSwarm> {
  const logDir = opts.logDir ?? path.join(opts.workspaceRoot, "logs");
  await mkdir(logDir, { recursive: true });
  const supervisor = new Supervisor({
    maxQuickRestarts: opts.maxQuickRestarts ?? 5,
    stableAfterMs: 10_000,
  });
  if (opts.onEvent) supervisor.on("event", opts.onEvent);
  const self = await selfCommand();
  const credentials = opts.credentials ?? { kind: "given" };
  const env: Record<string, string> = {
    NATS_URL: opts.natsUrl,
    SWARM_WORKSPACE: opts.workspaceRoot,
    SWARM_LOG_FORMAT: "json",
    // Children stop by themselves if the launcher is SIGKILLed (src/cli/signals.ts).
    [PARENT_PID_ENV]: String(process.pid),
    ...(opts.rosterPath ? { SWARM_ROSTER: path.resolve(opts.rosterPath) } : {}),
  };
  const streams: WriteStream[] = [];
  const logFiles: Record<string, string> = {};
  const startChild = (
    name: string,
    args: string[],
    identity: Record<string, string | undefined>,
  ) => {
    const file = path.join(logDir, `${name}.log`);
    const output = createWriteStream(file, { flags: "a" });
    output.on("error", () => undefined); // a full disk must not crash the launcher
    streams.push(output);
    logFiles[name] = file;
    supervisor.start({
      name,
      command: self.command,
      args: [...self.args, ...args],
      env: { ...env, ...identity },
      output,
    });
  };

  if (opts.orchestrator ?? true) {
    startChild(
      "orchestrator",
      ["orchestrator"],
      childCredentialEnv(credentials, { role: "orchestrator" }),
    );
  }
  for (const agent of opts.agents) {
    const identity = childCredentialEnv(credentials, { role: "worker", agent });
    for (let i = 1; i <= opts.replicas; i++) {
      startChild(replicaName(agent, i), ["worker", "--agent", agent], identity);
    }
  }

  return {
    supervisor,
    logFiles,
    async stop(graceMs = 15_000) {
      await supervisor.stopAll(graceMs);
      await Promise.all(
        streams.map(async (s) => {
          s.end();
          if (!s.closed) await once(s, "close").catch(() => undefined);
        }),
      );
    },
  };
}
