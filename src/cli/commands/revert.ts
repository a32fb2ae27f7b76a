import type { Command } from "commander";
import { mergeOf } from "../../client/mission-git-facts.ts";
import { BadInputError } from "../../errors.ts";
import { revertTask } from "../../workspace/mission-revert.ts";
import { openMissionGit } from "../mission-git-session.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";

interface RevertFlags extends CommonFlags {
  repo?: string;
  json?: boolean;
}

export function registerRevertCommand(program: Command): void {
  withCommonOptions(
    program
      .command("revert")
      .description(
        "undo one task of a delivered mission: a revert commit of its merged commit on top of branch squad/<mission>",
      )
      .argument("<mission>", "mission id")
      .argument("<task>", "task id (see swarm log <mission>)")
      .option(
        "--repo <dir>",
        "the repository holding branch squad/<mission> (default: the mission's workspace repository; or an export)",
      )
      .option(
        "--json",
        "print { mission_id, task_id, branch, commit, reverts, checked_out } as JSON",
      ),
  )
    .addHelpText(
      "after",
      `
What it does, exactly: finds the task's commit on the mission branch (its task_merged event),
checks that branch squad/<mission> of the repository contains it, and makes git's own revert
of it (three-way: later tasks' changes stay) on top of the branch's current tip, with the
message 'Revert "<title>"' and the trailers Squad-Mission and Squad-Reverts-Task, authored by
your git identity. When squad/<mission> is checked out there, the revert is made in that
(clean) working tree like git revert; otherwise in a temporary worktree, and only the branch
moves: your working tree, index and current branch stay as they are. A conflicting revert
changes nothing and names the files. The mission's events and bundles are not changed; push
the branch as usual. Deliver the mission first (swarm deliver, or swarm export + --repo).

Examples:
  $ swarm revert m-20261204-183000-ab12 t2
  $ swarm export m-20261204-183000-ab12 ./result && swarm revert m-20261204-183000-ab12 t2 --repo ./result`,
    )
    .action(async (mission: string, task: string, flags: RevertFlags) => {
      const common = resolveCommon(flags);
      const session = await openMissionGit(common, mission, "swarm-revert");
      let repoDir: string;
      let merged;
      try {
        const { facts } = session;
        const merge = mergeOf(facts, task);
        if (!merge) {
          const tasks = [...new Set(facts.merges.map((m) => m.task_id))];
          throw new BadInputError(
            `task ${task} of mission ${mission} has no commit on the mission branch ` +
              `(tasks with one: ${tasks.join(", ") || "none"})`,
          );
        }
        merged = merge.merged;
        const dir = flags.repo ?? (facts.workspace?.source === "git" ? facts.workspace.path : null);
        if (!dir) {
          throw new BadInputError(
            `mission ${mission}'s workspace is not a git repository: export it first ` +
              `(swarm export ${mission} DIR), then swarm revert ${mission} ${task} --repo DIR`,
          );
        }
        repoDir = dir;
      } finally {
        await session.close();
      }
      const r = await revertTask({ repoDir, missionId: mission, taskId: task, merged });
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({
              mission_id: mission,
              task_id: task,
              branch: r.branch,
              commit: r.commit,
              reverts: r.reverts,
              checked_out: r.checkedOut,
              repo: r.repoDir,
            })}\n`
          : `reverted task ${task} (${r.reverts.slice(0, 12)}) on ${r.branch} in ${r.repoDir}: ` +
              `new tip ${r.commit.slice(0, 12)}${r.checkedOut ? " (checked out: the working tree has it)" : ""}\n`,
      );
    });
}
