import type { Command } from "commander";
import { connectBus, readSwarmSnapshot, splitCredentials } from "../../bus/index.ts";
import { silentLogger } from "../../log.ts";
import { loadRoster } from "../../workers/roster.ts";
import { useColor } from "../color.ts";
import {
  positiveInt,
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";
import {
  DEFAULT_HEARTBEAT_INTERVAL_S,
  buildStatusReport,
  formatStatusReport,
} from "../status-report.ts";

interface StatusFlags extends CommonFlags {
  json?: boolean;
  heartbeatInterval: number;
  missions: number;
  fromEvents?: boolean;
}

export function registerStatusCommand(program: Command): void {
  withCommonOptions(
    program
      .command("status")
      .description("agents online, backlog and in-flight tasks per agent, DLQ counts, missions")
      .option("--json", "print one JSON object: { agents, instances, consumers, missions, ... }")
      .option(
        "--heartbeat-interval <s>",
        "the workers' heartbeat interval; 3 missed heartbeats = stale",
        positiveInt("--heartbeat-interval"),
        DEFAULT_HEARTBEAT_INTERVAL_S,
      )
      .option(
        "--missions <n>",
        "finished missions listed (the most recent; every unfinished one is listed)",
        positiveInt("--missions"),
        20,
      )
      .option(
        "--from-events",
        "read every event of SQUAD_EVENTS instead of the mission view (slow on a long history)",
      ),
  )
    .addHelpText(
      "after",
      `
Reads SQUAD_STATUS (last status per replica), the worker-<agent> consumers of
SQUAD_TASKS (backlog = num_pending, in flight = num_ack_pending), SQUAD_DLQ and
the mission view (KV squad_mission_view, kept by the orchestrator: unfinished
missions and the last --missions finished ones), so it takes as long on a
swarm that ran for a week as on a new one. Changes nothing.

Examples:
  $ swarm status
  $ swarm status --json | jq '.agents[] | {agent, online, backlog}'
  $ NATS_URL=nats://10.0.0.5:4222 swarm status --json

Exit codes: 0 ok, 2 bad flags, 3 NATS not reachable.`,
    )
    .action(async (flags: StatusFlags) => {
      const common = resolveCommon(flags);
      const roster = await loadRoster(common.rosterPath);
      const connectOpts = await clientConnectOptions(common, "swarm-status", { role: "watcher" });
      const nc = await connectBus({
        ...connectOpts,
        log: silentLogger,
        timeoutMs: 3000,
      });
      try {
        const snapshot = await readSwarmSnapshot(nc, {
          missions: flags.fromEvents
            ? { from: "events" }
            : { from: "view", finished: flags.missions },
        });
        const report = buildStatusReport(snapshot, {
          // Never the credentials a URL may carry: the report goes to terminals and files.
          nats: splitCredentials([connectOpts.servers].flat().join(",")).servers.join(","),
          knownAgents: roster.agents.map((a) => a.name),
          heartbeatIntervalS: flags.heartbeatInterval,
        });
        const mv = report.mission_view;
        if (flags.json && mv.state !== "ok")
          process.stderr.write(
            `warning: mission view ${mv.state}: ${mv.detail}; only queued submissions are listed (--from-events reads SQUAD_EVENTS)\n`,
          );
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(report)}\n`
            : formatStatusReport(report, {
                color: useColor(),
                // The view read --missions finished ones already; the events hold them all.
                ...(flags.fromEvents ? { maxMissions: flags.missions } : {}),
              }),
        );
      } finally {
        await nc.close();
      }
    });
}
