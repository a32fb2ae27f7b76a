import type { Command } from "commander";
import { connectBus } from "../../bus/index.ts";
import { ExitCode } from "../../errors.ts";
import { createLogger } from "../../log.ts";
import { isFinalMissionEvent, type FinalMissionEvent } from "../../schema/index.ts";
import { useColor } from "../color.ts";
import { formatDeadLetterLine, formatEventLine, formatInvalidLine } from "../event-line.ts";
import {
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";
import { onShutdownSignal } from "../signals.ts";
import {
  DEAD_LETTER_TYPE,
  checkAgentName,
  checkMissionId,
  createWatchFilter,
  parseTypeList,
} from "../watch-filter.ts";
import { startWatchSession, type WatchItem } from "../watch-session.ts";

interface WatchFlags extends CommonFlags {
  mission?: string;
  agent?: string;
  type?: string;
  json?: boolean;
  sinceStart?: boolean;
}

export function registerWatchCommand(program: Command): void {
  withCommonOptions(
    program
      .command("watch")
      .description("follow the bus: one line per event on squad.> (decoded, validated, coloured)")
      .option(
        "--mission <id>",
        "only this mission: its recorded history first, then live; exits after its end",
      )
      .option("--agent <name>", "only this agent's tasks and status events")
      .option(
        "--type <types>",
        `only these event types, comma-separated (${DEAD_LETTER_TYPE} selects DLQ records)`,
      )
      .option("--json", "one JSON object per line: the validated events as published")
      .option("--since-start", "show everything SQUAD_EVENTS holds first, then continue live"),
  )
    .addHelpText(
      "after",
      `
Lifecycle events come from SQUAD_EVENTS (in order, across reconnects);
task_assigned, status events and dead letters are live only. Invalid messages
are reported on stderr. With --json, a dead-letter record is printed as
{"kind":"dead_letter","subject":...,"record":{...}}; every other line is an event.

Examples:
  $ swarm watch                                   everything, live, until Ctrl-C
  $ swarm watch --mission m-20261121-134501-3fa2  one mission from its start; exit 0 if it completed
  $ swarm watch --agent builder --type task_started,task_completed,task_failed
  $ swarm watch --json --mission "$ID" | jq -c '{type, task_id}'
  $ swarm watch --since-start --type mission_completed,mission_failed

Exit codes: 0 (Ctrl-C, or the watched mission completed), 1 the watched mission
failed or was cancelled, 2 bad flags, 3 NATS not reachable.`,
    )
    .action(async (flags: WatchFlags) => {
      const missionId = flags.mission === undefined ? undefined : checkMissionId(flags.mission);
      const agent = flags.agent === undefined ? undefined : checkAgentName(flags.agent);
      const types = flags.type === undefined ? undefined : parseTypeList(flags.type);
      const common = resolveCommon(flags);
      const log = createLogger("watch", {}, { defaultLevel: "warn" });
      const color = useColor();
      const filter = createWatchFilter({
        ...(missionId ? { missionId } : {}),
        ...(agent ? { agent } : {}),
        ...(types ? { types } : {}),
      });
      // `swarm watch | head` closes the pipe: that is the reader leaving, not an error.
      process.stdout.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EPIPE") process.exit(ExitCode.ok);
        throw err;
      });

      const nc = await connectBus({
        ...(await clientConnectOptions(common, "swarm-watch", { role: "watcher" })),
        log,
      });
      let finish!: (final: FinalMissionEvent | null) => void;
      const finished = new Promise<FinalMissionEvent | null>((r) => (finish = r));

      const print = (line: string) => process.stdout.write(`${line}\n`);
      const onItem = (item: WatchItem) => {
        switch (item.kind) {
          case "invalid":
            process.stderr.write(`${formatInvalidLine(item.subject, item.error, item.data)}\n`);
            return;
          case "dead_letter":
            if (!filter.acceptsDeadLetter(item.record)) return;
            print(
              flags.json
                ? JSON.stringify({
                    kind: "dead_letter",
                    subject: item.subject,
                    record: item.record,
                  })
                : formatDeadLetterLine(item.record, color),
            );
            return;
          case "event": {
            const e = item.event;
            filter.observe(e);
            if (filter.accepts(e))
              print(flags.json ? JSON.stringify(e) : formatEventLine(e, color));
            if (missionId && e.mission_id === missionId && isFinalMissionEvent(e)) finish(e);
            return;
          }
        }
      };

      try {
        const session = await startWatchSession(nc, {
          ...(missionId ? { missionId } : {}),
          replay: missionId !== undefined || flags.sinceStart === true,
          onItem,
          streams: {
            eventsMaxAgeS: common.env.SWARM_EVENTS_MAX_AGE_S,
            replicas: common.env.SWARM_STREAM_REPLICAS,
          },
          log,
        });
        onShutdownSignal(async () => finish(null));
        await session.ready;
        log.info(
          { mission: missionId ?? null, agent: agent ?? null, types: types ? [...types] : null },
          "watching",
        );
        const final = await finished;
        await session.stop();
        if (final) {
          process.exitCode =
            final.type === "mission_completed" ? ExitCode.ok : ExitCode.missionFailed;
        }
      } finally {
        await nc.drain().catch(() => nc.close());
      }
    });
}
