import { openCliGuard } from "../cli-guard.ts";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  connectBus,
  createPublisher,
  readMissionSummary,
  readSwarmSnapshot,
} from "../../bus/index.ts";
import { BadInputError, ExitCode } from "../../errors.ts";
import { silentLogger } from "../../log.ts";
import { followMission, nextEventsSeq } from "../../client/submission.ts";
import { isMissionEndType, makeEvent, type EventOf } from "../../schema/index.ts";
import { useColor } from "../color.ts";
import { formatEventLine } from "../event-line.ts";
import {
  isFinished,
  overviewOf,
  summarizeMissions,
  type MissionOverview,
} from "../mission-summary.ts";
import {
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";
import { checkMissionId } from "../watch-filter.ts";

interface CancelFlags extends CommonFlags {
  reason: string;
  wait?: boolean;
  json?: boolean;
}

export function registerCancelCommand(program: Command): void {
  withCommonOptions(
    program
      .command("cancel")
      .description("ask the orchestrator to cancel a mission (publishes mission_cancelled)")
      .argument("<mission>", "mission id, as `swarm submit` printed it")
      .option(
        "--reason <text>",
        "why; recorded in the event and the report",
        "cancelled from the CLI",
      )
      .option("--wait", "wait for the orchestrator's final event; exit 0 only if it cancelled")
      .option("--json", "print the events (sent, and with --wait received) as JSON lines"),
  )
    .addHelpText(
      "after",
      `
Publishes mission_cancelled (source "cli") on squad.coordination. The
orchestrator stops dispatching, the workers abort the mission's running tasks,
and the orchestrator ends the mission with its own mission_cancelled.

Examples:
  $ swarm cancel m-20261121-134501-3fa2
  $ swarm cancel m-20261121-134501-3fa2 --reason "wrong brief" --wait

Exit codes: 0 sent (with --wait: the mission was cancelled), 1 with --wait: the
mission ended otherwise, 2 bad or unknown mission id, 3 NATS not reachable.`,
    )
    .action(async (missionArg: string, flags: CancelFlags) => {
      const missionId = checkMissionId(missionArg);
      const common = resolveCommon(flags);
      const nc = await connectBus({
        ...(await clientConnectOptions(common, "swarm-cancel", { role: "operator" })),
        log: silentLogger,
        timeoutMs: 3000,
      });
      try {
        await cancel(nc, missionId, flags);
      } finally {
        await nc.drain().catch(() => nc.close());
      }
    });
}

async function cancel(nc: NatsConnection, missionId: string, flags: CancelFlags): Promise<void> {
  const guard = await openCliGuard(nc, { publishes: true });
  const known = await findMission(nc, missionId);
  if (!known) {
    throw new BadInputError(
      `no mission ${missionId} on this server (nothing in SQUAD_EVENTS or SQUAD_MISSIONS); ` +
        "`swarm status` lists the missions",
    );
  }
  const color = useColor();
  const show = (e: Parameters<typeof formatEventLine>[0]) =>
    process.stdout.write(`${flags.json ? JSON.stringify(e) : formatEventLine(e, color)}\n`);
  if (isFinished(known.state)) {
    process.stderr.write(
      `mission ${missionId} has already ${known.state === "completed" ? "completed" : `ended (${known.state})`}; nothing sent\n`,
    );
    if (flags.wait)
      process.exitCode = known.state === "cancelled" ? ExitCode.ok : ExitCode.missionFailed;
    return;
  }
  if (known.state === "submitted") {
    process.stderr.write(
      `note: mission ${missionId} is not planned yet; the orchestrator that takes it will cancel it\n`,
    );
  }

  const fromSeq = flags.wait ? await nextEventsSeq(nc) : 0;
  const event: EventOf<"mission_cancelled"> = makeEvent(
    "mission_cancelled",
    {
      // Unique per request: asking twice is recorded twice, a retried publish once.
      id: `${missionId}.cancel-request.${Date.now().toString(36)}${randomBytes(2).toString("hex")}`,
      mission_id: missionId,
      source: "cli",
    },
    { reason: flags.reason, requested_by: "cli" },
  );
  await createPublisher(nc, { signer: guard.signer }).publish(event);
  show(event);
  if (!flags.wait) return;

  const final = await followMission(nc, {
    missionId,
    fromSeq,
    guard,
    onEvent: (e) => {
      if (isMissionEndType(e.type) && e.id !== event.id) show(e);
    },
  });
  if (final.type !== "mission_cancelled") {
    process.stderr.write(
      `mission ${missionId} ended with ${final.type} before the cancel took effect\n`,
    );
  }
  process.exitCode = final.type === "mission_cancelled" ? ExitCode.ok : ExitCode.missionFailed;
}

/**
 * The mission's summary: from the mission view (one key), else from what
 * the bus recorded (a mission the view does not know: just submitted, or a
 * server whose orchestrator predates the view), or null when it is unknown.
 */
async function findMission(nc: NatsConnection, missionId: string): Promise<MissionOverview | null> {
  const viewed = await readMissionSummary(nc, missionId).catch(() => null);
  if (viewed) return overviewOf(viewed);
  const snap = await readSwarmSnapshot(nc, { missions: { from: "events" } });
  const mine = snap.missionEvents.filter((e) => e.mission_id === missionId);
  const pending = snap.submissions.filter((e) => e.mission_id === missionId);
  return summarizeMissions(mine, pending)[0] ?? null;
}
