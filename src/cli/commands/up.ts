import { Option, type Command } from "commander";
import { runSwarmUp } from "../launcher/swarm-up.ts";
import {
  launcherNatsSettings,
  positiveInt,
  resolveCommon,
  withCommonOptions,
  withLauncherNatsOptions,
  type CommonFlags,
} from "../options.ts";

interface UpFlags extends CommonFlags {
  insecureNats?: boolean;
  replicas: number;
  agents?: string[];
}

export function registerUpCommand(program: Command): void {
  withLauncherNatsOptions(
    withCommonOptions(
      program
        .command("up")
        .description(
          "start the orchestrator and N replicas of each roster agent (supervised) and keep them " +
            "running until Ctrl-C; starts NATS too when none answers",
        )
        .addOption(
          new Option("--replicas <n>", "replicas of each agent")
            .argParser(positiveInt("--replicas"))
            .default(1),
        )
        .option("--agents <list>", "only these roster agents (comma-separated)", (v: string) =>
          v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        ),
    ),
  )
    .addHelpText(
      "after",
      `
Logs of every process: <workspace>/logs/<name>.log. NATS as for deploy (see swarm deploy --help).

Examples:
  $ swarm up --replicas 2
  $ swarm up --agents builder,tester`,
    )
    .action(async (flags: UpFlags) => {
      const common = resolveCommon(flags);
      process.exitCode = await runSwarmUp({
        replicas: flags.replicas,
        ...(flags.agents ? { agents: flags.agents } : {}),
        natsUrl: common.natsUrl,
        natsExplicit: common.natsExplicit,
        stateDir: common.stateDir,
        ...launcherNatsSettings(flags, common),
        workspaceRoot: common.workspaceRoot,
        rosterPath: common.rosterPath,
      });
    });
}
