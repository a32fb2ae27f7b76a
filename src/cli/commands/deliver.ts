import { realpath } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { deliverMission, describeDelivered } from "../../client/mission-workspace.ts";
import { BadInputError, ExitCode } from "../../errors.ts";
import type { MissionWorkspace } from "../../schema/index.ts";
import { pushOption } from "../mission-delivery.ts";
import { openMissionGit } from "../mission-git-session.ts";
import { resolveCommon, withCommonOptions, type CommonFlags } from "../options.ts";

interface DeliverFlags extends CommonFlags {
  push?: string;
  partial?: boolean;
  repo?: string;
  json?: boolean;
}

export function registerDeliverCommand(program: Command): void {
  withCommonOptions(
    program
      .command("deliver")
      .description(
        "deliver an ended mission's head: branch squad/<mission> in its workspace repository, and/or a push",
      )
      .argument("<mission>", "mission id")
      .addOption(pushOption())
      .option("--repo <dir>", "deliver into this git repository instead of the mission's workspace")
      .option("--partial", "a failed or cancelled mission: deliver the tasks merged so far")
      .option("--json", "print { mission_id, delivered, notes } as JSON"),
  )
    .addHelpText(
      "after",
      `
The branch is created with the objects it needs; the repository's working tree, index, current
branch and other branches are not touched. An existing squad/<mission> branch is never
overwritten (exit 2); one already at the head is left as it is. --push uses your git's own
configuration and credential helpers; a remote's branch of that name must not exist yet.
deploy-swarm and swarm submit --wait do this when a mission completes.

Examples:
  $ swarm deliver m-20261204-183000-ab12
  $ swarm deliver m-20261204-183000-ab12 --push origin
  $ swarm deliver m-20261204-183000-ab12 --partial --repo ~/src/app`,
    )
    .action(async (mission: string, flags: DeliverFlags) => {
      const common = resolveCommon(flags);
      const session = await openMissionGit(common, mission, "swarm-deliver");
      try {
        const { facts } = session;
        let workspace: MissionWorkspace | null = facts.workspace;
        if (flags.repo !== undefined) {
          const dir = await realpath(path.resolve(flags.repo)).catch(() => {
            throw new BadInputError(`--repo ${flags.repo}: no such directory`);
          });
          workspace = { base: workspace?.base ?? facts.head!, source: "git", path: dir };
        }
        const outcome = await deliverMission(session.repo, {
          missionId: mission,
          end: facts.final?.type ?? null,
          head: facts.final?.head ?? (flags.partial ? facts.head : null),
          workspace,
          push: flags.push ?? null,
          partial: flags.partial === true,
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ mission_id: mission, ...outcome })}\n`);
        } else {
          for (const d of outcome.delivered) process.stdout.write(`${describeDelivered(d)}\n`);
          for (const n of outcome.notes) process.stdout.write(`${n}\n`);
        }
        if (outcome.delivered.length === 0) {
          // Nothing was delivered: a failed/cancelled mission (1), or nowhere to deliver to (2).
          const ended = facts.final?.type;
          process.exitCode =
            ended === "mission_failed" || ended === "mission_cancelled"
              ? ExitCode.missionFailed
              : ExitCode.badInput;
        }
      } finally {
        await session.close();
      }
    });
}
