import type { Command } from "commander";
import { replayEvents, type Admission } from "../../bus/index.ts";
import { openCliGuard } from "../cli-guard.ts";
import { BadInputError } from "../../errors.ts";
import { buildAudit, type AuditRow } from "../../client/audit.ts";
import { MissionId, type SquadEvent } from "../../schema/index.ts";
import { renderTable } from "../text-table.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";
import { connectCliBus } from "./approve.ts";

interface AuditFlags extends CommonFlags {
  json?: boolean;
}

export function registerAuditCommand(program: Command): void {
  withCommonOptions(
    program
      .command("audit")
      .description(
        "who ran what, where, when, with which exit code and approval: one row per step, verify command and approval decision",
      )
      .argument("<mission>", "mission id")
      .option("--json", "print { mission_id, rows } as JSON"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  $ swarm audit m-20240101-abcd\n  $ swarm audit m-20240101-abcd --json | jq '.rows[] | select(.ok == false)'",
    )
    .action(async (mission: string, flags: AuditFlags) => {
      if (!MissionId.safeParse(mission).success) {
        throw new BadInputError(`${JSON.stringify(mission)} is not a mission id`);
      }
      const common = resolveCommon(flags);
      const nc = await connectCliBus(common, "swarm-audit", "watcher");
      const events: SquadEvent[] = [];
      const admissions: Admission[] = [];
      try {
        // With a registry, each event's signer is checked: the approver shown is the identity.
        const guard = await openCliGuard(nc, { publishes: false });
        for await (const { event, message } of replayEvents(nc, { missionId: mission })) {
          events.push(event);
          admissions.push(guard.admit(message, event));
        }
      } finally {
        await nc.drain();
      }
      if (events.length === 0) {
        throw new BadInputError(
          `no events of mission ${mission} in SQUAD_EVENTS (wrong id, or older than its max age)`,
        );
      }
      const rows = buildAudit(events, mission, admissions);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ mission_id: mission, rows })}\n`
          : formatAuditTable(rows, mission),
      );
    });
}

/** A plain-text table, one line per row; the command last so it may be long. */
export function formatAuditTable(rows: readonly AuditRow[], mission: string): string {
  if (rows.length === 0)
    return `mission ${mission}: no steps, verify commands or approvals recorded\n`;
  const header = [
    "TIME",
    "TASK",
    "WORKER",
    "TOOL",
    "EXIT",
    "OK",
    "MS",
    "APPROVAL",
    "COMMAND / ARGS",
  ];
  const lines = rows.map((r) => [
    r.timestamp.replace("T", " ").replace(/\.\d+Z$|Z$/, ""),
    r.task_id ? `${r.task_id}#${r.attempt ?? "?"}` : "-",
    r.worker ?? "-",
    r.tool,
    r.exit_code === null ? "-" : String(r.exit_code),
    r.ok === null ? "-" : r.ok ? "yes" : "no",
    r.duration_ms === null ? "-" : String(r.duration_ms),
    r.approval_id
      ? `${r.refused ? "REFUSED " : ""}${r.decision ?? "?"}${r.by ? ` by ${r.by}` : ""}${r.decision_reason ? `: ${oneLine(r.decision_reason)}` : ""} (${r.approval_id})`
      : "-",
    oneLine(r.command ?? JSON.stringify(r.args)),
  ]);
  return `${renderTable(header, lines)}\n`;
}

function oneLine(s: string): string {
  const flat = s.replace(/\s*\n\s*/g, " ⏎ ");
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat;
}
