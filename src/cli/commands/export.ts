import type { Command } from "commander";
import { exportMission } from "../../client/mission-workspace.ts";
import { headOf, openMissionGit } from "../mission-git-session.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";

interface ExportFlags extends CommonFlags {
  partial?: boolean;
  json?: boolean;
}

export function registerExportCommand(program: Command): void {
  withCommonOptions(
    program
      .command("export")
      .description(
        "write a mission's head as a new git repository in DIR (absent or empty), on branch squad/<mission>",
      )
      .argument("<mission>", "mission id")
      .argument("<dir>", "the directory to create (or an empty one)")
      .option(
        "--partial",
        "a failed, cancelled or unfinished mission: write the tasks merged so far",
      )
      .option("--json", "print { mission_id, branch, commit, dir } as JSON"),
  )
    .addHelpText(
      "after",
      `
The repository holds the mission's whole history (its base and one commit per task), with no
remote. It is the way to get the result of a mission whose workspace was not a git repository.

Examples:
  $ swarm export m-20261204-183000-ab12 ./result
  $ swarm export m-20261204-183000-ab12 ./partial --partial`,
    )
    .action(async (mission: string, dir: string, flags: ExportFlags) => {
      const common = resolveCommon(flags);
      const session = await openMissionGit(common, mission, "swarm-export");
      try {
        const head = headOf(session.facts, flags.partial === true);
        const d = await exportMission(session.repo, mission, head, dir);
        process.stdout.write(
          flags.json
            ? `${JSON.stringify({ mission_id: mission, branch: d.branch, commit: d.commit, dir: d.where })}\n`
            : `exported ${d.commit.slice(0, 12)} to ${d.where} (branch ${d.branch})\n`,
        );
      } finally {
        await session.close();
      }
    });
}
