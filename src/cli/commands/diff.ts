import type { Command } from "commander";
import { BadInputError } from "../../errors.ts";
import { mergeOf } from "../../client/mission-git-facts.ts";
import type { CommitId } from "../../schema/index.ts";
import { baseOf, headOf, openMissionGit } from "../mission-git-session.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";

interface DiffFlags extends CommonFlags {
  task?: string;
  stat?: boolean;
  json?: boolean;
}

export function registerDiffCommand(program: Command): void {
  withCommonOptions(
    program
      .command("diff")
      .description(
        "what a mission changed: its base against its head, or one task's commit on the mission branch",
      )
      .argument("<mission>", "mission id")
      .option("--task <task>", "only what this task's merged commit changed")
      .option("--stat", "files and changed lines only")
      .option("--json", "print { mission_id, task_id, from, to, changes } as JSON"),
  )
    .addHelpText(
      "after",
      `
The mission's commits are fetched from the squad_bundles object store into a cache under
SWARM_STATE_DIR/repos. A mission that has not completed shows its head so far.

Examples:
  $ swarm diff m-20261204-183000-ab12
  $ swarm diff m-20261204-183000-ab12 --task t2 --stat
  $ swarm diff m-20261204-183000-ab12 --json | jq '.changes.files[].path'`,
    )
    .action(async (mission: string, flags: DiffFlags) => {
      const common = resolveCommon(flags);
      const session = await openMissionGit(common, mission, "swarm-diff");
      try {
        const { facts, repo } = session;
        let from: CommitId;
        let to: CommitId;
        if (flags.task !== undefined) {
          const merge = mergeOf(facts, flags.task);
          if (!merge) {
            const merged = [...new Set(facts.merges.map((m) => m.task_id))];
            throw new BadInputError(
              `task ${flags.task} of mission ${mission} has no commit on the mission branch ` +
                `(tasks merged: ${merged.join(", ") || "none"}; a task that changed nothing makes no commit)`,
            );
          }
          from = merge.onto;
          to = merge.merged;
        } else {
          from = baseOf(facts);
          to = headOf(facts, true);
        }
        await repo.ensure(to);
        if (flags.json) {
          const changes = await repo.diffChanges(from, to);
          process.stdout.write(
            `${JSON.stringify({ mission_id: mission, task_id: flags.task ?? null, from, to, changes })}\n`,
          );
          return;
        }
        const color = process.stdout.isTTY === true ? "--color=always" : "--no-color";
        const out = await repo.git([
          "diff",
          color,
          "-M",
          "--no-ext-diff",
          ...(flags.stat ? ["--stat"] : []),
          from,
          to,
          "--",
        ]);
        process.stdout.write(out ? `${out}\n` : "");
      } finally {
        await session.close();
      }
    });
}
