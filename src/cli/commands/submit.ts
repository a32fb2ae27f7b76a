import { openCliGuard } from "../cli-guard.ts";
import type { Command } from "commander";
import { connectBus } from "../../bus/index.ts";
import { ExitCode } from "../../errors.ts";
import { silentLogger } from "../../log.ts";
import {
  followMission,
  newMissionId,
  nextEventsSeq,
  submitMission,
} from "../../client/submission.ts";
import { readBriefFile } from "../../client/brief-file.ts";
import { seedMissionWorkspace } from "../../orchestrator/workspace-seed.ts";
import { formatEventLine } from "../event-line.ts";
import {
  allowWorkspaceOption,
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";

interface SubmitFlags extends CommonFlags {
  wait?: boolean;
  json?: boolean;
  allowWorkspace?: string[];
}

export function registerSubmitCommand(program: Command): void {
  withCommonOptions(
    program
      .command("submit")
      .description("submit a mission brief; prints the mission id")
      .argument("<brief>", "mission brief (Markdown); - reads it from stdin")
      .option("--wait", "follow the mission to its end; exit 0 only if it completed")
      .option("--json", "with --wait: print each event as JSON")
      .addOption(allowWorkspaceOption()),
  )
    .addHelpText("after", "\nExamples:\n  $ swarm submit mission-briefs/demo-library.md --wait")
    .action(async (file: string, flags: SubmitFlags) => {
      const common = resolveCommon(flags);
      const { text, sourcePath, seed } = await readBriefFile(
        file,
        common.rosterPath,
        flags.allowWorkspace,
      );
      const nc = await connectBus({
        ...(await clientConnectOptions(common, "swarm-submit", { role: "operator" })),
        log: silentLogger,
      });
      try {
        const guard = await openCliGuard(nc, { publishes: true });
        const fromSeq = flags.wait ? await nextEventsSeq(nc).catch(() => 1) : 1;
        const missionId = newMissionId();
        if (seed) await seedMissionWorkspace(seed, common.workspaceRoot, missionId);
        await submitMission(nc, { brief: text, sourcePath, missionId, signer: guard.signer });
        process.stdout.write(`${missionId}\n`);
        if (!flags.wait) return;
        const color = process.stdout.isTTY === true;
        const final = await followMission(nc, {
          missionId,
          fromSeq,
          guard,
          onEvent: (e) =>
            process.stdout.write(
              flags.json ? `${JSON.stringify(e)}\n` : `${formatEventLine(e, color)}\n`,
            ),
        });
        process.exitCode =
          final.type === "mission_completed" ? ExitCode.ok : ExitCode.missionFailed;
      } finally {
        await nc.drain();
      }
    });
}
