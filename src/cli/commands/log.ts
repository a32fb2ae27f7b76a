import type { Command } from "commander";
import { baseOf, headOf, openMissionGit } from "../mission-git-session.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";
import { renderTable } from "../text-table.ts";

interface LogFlags extends CommonFlags {
  json?: boolean;
}

export interface MissionLogEntry {
  commit: string;
  task_id: string | null;
  attempt: number | null;
  agent: string | null;
  author: string;
  date: string;
  subject: string;
}

export function registerLogCommand(program: Command): void {
  withCommonOptions(
    program
      .command("log")
      .description(
        "the mission branch's commits, newest first: which task, agent and attempt made each (from its Squad-* trailers)",
      )
      .argument("<mission>", "mission id")
      .option("--json", "print { mission_id, base, head, commits } as JSON"),
  )
    .addHelpText(
      "after",
      `
Examples:
  $ swarm log m-20261204-183000-ab12
  $ swarm log m-20261204-183000-ab12 --json | jq -r '.commits[] | "\\(.task_id) \\(.commit)"'`,
    )
    .action(async (mission: string, flags: LogFlags) => {
      const common = resolveCommon(flags);
      const session = await openMissionGit(common, mission, "swarm-log");
      try {
        const { facts, repo } = session;
        const base = baseOf(facts);
        const head = headOf(facts, true);
        await repo.ensure(head);
        const commits: MissionLogEntry[] = (await repo.log(base, head)).map((c) => {
          const attempt = Number(c.trailers["Squad-Attempt"]);
          return {
            commit: c.commit,
            task_id: c.trailers["Squad-Task"] ?? null,
            attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : null,
            agent: c.trailers["Squad-Agent"] ?? null,
            author: c.author,
            date: c.date,
            subject: c.subject,
          };
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ mission_id: mission, base, head, commits })}\n`);
          return;
        }
        if (commits.length === 0) {
          process.stdout.write(`mission ${mission}: no commits on top of its base ${base}\n`);
          return;
        }
        const rows = commits.map((c) => [
          c.commit.slice(0, 12),
          c.task_id ?? "-",
          c.attempt === null ? "-" : String(c.attempt),
          c.agent ?? "-",
          c.date.replace("T", " ").replace(/([+-]\d\d:\d\d|Z)$/, ""),
          c.subject,
        ]);
        process.stdout.write(
          `${renderTable(["COMMIT", "TASK", "ATTEMPT", "AGENT", "DATE", "SUBJECT"], rows)}\n` +
            `base ${base.slice(0, 12)}${facts.workspace?.path ? ` (${facts.workspace.source}: ${facts.workspace.path})` : ` (${facts.workspace?.source ?? "?"})`}\n`,
        );
      } finally {
        await session.close();
      }
    });
}
