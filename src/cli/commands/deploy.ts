import { Option, type Command } from "commander";
import { deployMission } from "../launcher/deploy-mission.ts";
import {
  allowWorkspaceOption,
  positiveInt,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";

interface DeployFlags extends CommonFlags {
  replicas: number;
  json?: boolean;
  allowWorkspace?: string[];
}

export function registerDeployCommand(program: Command): void {
  withCommonOptions(
    program
      .command("deploy")
      .description(
        "run a brief end to end: start NATS if none answers, the orchestrator and the replicas " +
          "the brief needs; submit; show live progress; exit 0 only if the mission completed",
      )
      .argument("<brief>", "mission brief (Markdown)")
      .addOption(
        new Option("--replicas <n>", "replicas of each agent the brief needs")
          .argParser(positiveInt("--replicas"))
          .default(2),
      )
      .option("--json", "print one JSON summary line on stdout (progress goes to stderr)")
      .addOption(allowWorkspaceOption()),
  )
    .addHelpText(
      "after",
      `
NATS: the server at --nats / NATS_URL (default nats://127.0.0.1:4222) when one answers there.
Otherwise a local nats-server (NATS_SERVER_BIN, PATH, /usr/sbin/nats-server) is started with
JetStream, its store in <workspace>/.nats: on the port of --nats / NATS_URL when given, else on
4222 when free, else on a free port. It is stopped at the end.
Logs of every process: <workspace>/logs/<name>.log. Ctrl-C cancels the mission, then stops.

Examples:
  $ scripts/deploy-swarm mission-briefs/demo-library.md
  $ scripts/deploy-swarm mission-briefs/demo-library.md --replicas 3 --json`,
    )
    .action(async (file: string, flags: DeployFlags) => {
      const common = resolveCommon(flags);
      process.exitCode = await deployMission({
        briefFile: file,
        replicas: flags.replicas,
        natsUrl: common.natsUrl,
        natsExplicit: flags.nats !== undefined,
        workspaceRoot: common.workspaceRoot,
        rosterPath: common.rosterPath,
        json: flags.json === true,
        allowWorkspace: flags.allowWorkspace ?? [],
        env: common.env,
      });
    });
}
