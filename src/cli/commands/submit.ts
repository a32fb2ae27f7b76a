import { openCliGuard } from "../cli-guard.ts";
import type { Command } from "commander";
import { connectBus } from "../../bus/index.ts";
import { ExitCode } from "../../errors.ts";
import { silentLogger } from "../../log.ts";
import { followMission, newMissionId, nextEventsSeq } from "../../client/submission.ts";
import { readBriefFile } from "../../client/brief-file.ts";
import { submitWithWorkspace } from "../../client/mission-workspace.ts";
import { BadInputError } from "../../errors.ts";
import { deliverAfterMission, pushOption } from "../mission-delivery.ts";
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
  push?: string;
}

export function registerSubmitCommand(program: Command): void {
  withCommonOptions(
    program
      .command("submit")
      .description("submit a mission brief; prints the mission id")
      .argument("<brief>", "mission brief (Markdown); - reads it from stdin")
      .option("--wait", "follow the mission to its end; exit 0 only if it completed")
      .option("--json", "with --wait: print each event as JSON")
      .addOption(allowWorkspaceOption())
      .addOption(pushOption()),
  )
    .addHelpText(
      "after",
      "\nWith --wait, a completed mission is delivered: branch squad/<mission> in the brief's\n" +
        "workspace repository (its working tree, index and current branch untouched), and\n" +
        "pushed to REMOTE with --push (or the brief's deliver: { push: REMOTE }).\n" +
        "\nExamples:\n  $ swarm submit mission-briefs/demo-library.md --wait\n" +
        "  $ swarm submit mission-briefs/demo-git.md --wait --push origin",
    )
    .action(async (file: string, flags: SubmitFlags) => {
      const common = resolveCommon(flags);
      if (flags.push !== undefined && !flags.wait) {
        throw new BadInputError(
          "--push delivers when the mission ends, so it needs --wait (or later: swarm deliver <mission> --push REMOTE)",
        );
      }
      const { text, sourcePath, seed, brief } = await readBriefFile(
        file,
        common.rosterPath,
        flags.allowWorkspace,
        process.stdin,
        { checkBase: true },
      );
      const nc = await connectBus({
        ...(await clientConnectOptions(common, "swarm-submit", { role: "operator" })),
        log: silentLogger,
      });
      try {
        const guard = await openCliGuard(nc, { publishes: true });
        const fromSeq = flags.wait ? await nextEventsSeq(nc).catch(() => 1) : 1;
        const missionId = newMissionId();
        const { workspace, repo } = await submitWithWorkspace(nc, {
          brief: text,
          sourcePath,
          seed,
          missionId,
          stateDir: common.stateDir,
          signer: guard.signer,
        });
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
        const delivered = await deliverAfterMission(repo, {
          missionId,
          final,
          workspace,
          push: flags.push ?? brief.deliver?.push ?? null,
          // With --json stdout carries events only.
          out: flags.json ? process.stderr : process.stdout,
        });
        process.exitCode =
          delivered !== ExitCode.ok
            ? delivered
            : final.type === "mission_completed"
              ? ExitCode.ok
              : ExitCode.missionFailed;
      } finally {
        await nc.drain();
      }
    });
}
