import { Option, type Command } from "commander";
import { deployMission } from "../launcher/deploy-mission.ts";
import { pushOption } from "../mission-delivery.ts";
import {
  allowWorkspaceOption,
  launcherNatsSettings,
  positiveInt,
  resolveCommon,
  withCommonOptions,
  withLauncherNatsOptions,
  type CommonFlags,
} from "../options.ts";

interface DeployFlags extends CommonFlags {
  insecureNats?: boolean;
  replicas: number;
  json?: boolean;
  allowWorkspace?: string[];
  dashboard: boolean;
  push?: string;
}

export function registerDeployCommand(program: Command): void {
  withLauncherNatsOptions(
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
        .option("--no-dashboard", "do not start the web dashboard (swarm dashboard)")
        .addOption(allowWorkspaceOption())
        .addOption(pushOption()),
    ),
  )
    .addHelpText(
      "after",
      `
NATS: the server at --nats / NATS_URL when one answers there (with the credentials given, if
any; a server that accepts clients without authentication is warned about). Without a URL: the
server recorded in SWARM_STATE_DIR (default .swarm/state) by a running launcher, else a local
nats-server (NATS_SERVER_BIN, PATH, /usr/sbin/nats-server) with JetStream, its store in
<workspace>/.nats, on 4222 when free, else on a free port; with a URL of this machine that
nothing answers, on that port. The local server is authenticated: one nkey per role generated in
<state>/nats (each process gets only its own); --insecure-nats / SWARM_NATS_AUTH=none runs it
without, with a warning. It is stopped at the end.
Logs of every process: <workspace>/logs/<name>.log. Ctrl-C cancels the mission, then stops.
The web dashboard (docs/dashboard.md) runs on http://127.0.0.1:7800/ (any free port when that
is taken) for as long as the deploy does; its URL, with the token, is in the progress view.
Delivery: when the mission completes, its head becomes branch squad/<mission> in the brief's
workspace: repository (working tree, index and current branch untouched; an existing branch is
never overwritten: exit 2), and is pushed to REMOTE with --push (or deliver: { push: REMOTE }).

Examples:
  $ scripts/deploy-swarm mission-briefs/demo-library.md
  $ scripts/deploy-swarm mission-briefs/demo-library.md --replicas 3 --json
  $ scripts/deploy-swarm mission-briefs/demo-git.md --push origin`,
    )
    .action(async (file: string, flags: DeployFlags) => {
      const common = resolveCommon(flags);
      process.exitCode = await deployMission({
        briefFile: file,
        replicas: flags.replicas,
        natsUrl: common.natsUrl,
        natsExplicit: common.natsExplicit,
        stateDir: common.stateDir,
        ...launcherNatsSettings(flags, common),
        workspaceRoot: common.workspaceRoot,
        rosterPath: common.rosterPath,
        json: flags.json === true,
        allowWorkspace: flags.allowWorkspace ?? [],
        push: flags.push ?? null,
        env: common.env,
        dashboard: flags.dashboard,
      });
    });
}
