import { readFileSync } from "node:fs";
import { Command, type CommanderError } from "commander";
import { ExitCode } from "../errors.ts";

/** Version from package.json, read once at start-up (not on a hot path). */
export function packageVersion(): string {
  const url = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

/**
 * The `swarm` command. Each subcommand lives in its own file and registers
 * itself here; bad flags and unknown commands exit 2 (bad input) per the contract.
 */
export function createProgram(): Command {
  const program = new Command("swarm")
    .description("Squad: an event-driven AI agent swarm on NATS JetStream")
    .version(packageVersion(), "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .addHelpText(
      "after",
      `
Examples:
  $ scripts/deploy-swarm mission-briefs/demo-library.md    run a mission end to end
  $ swarm watch                                             follow every event on squad.>
  $ swarm status --json                                     agents, backlog and missions

Exit codes: 0 success, 1 mission failed, 2 bad input, 3 infrastructure unavailable,
            4 internal error (a defect of swarm: please report it).
Environment: NATS_URL, SWARM_WORKSPACE, SWARM_ROSTER, SWARM_PLANNER_MODEL, SWARM_WORKER_MODEL,
             OLLAMA_HOST, OPENAI_BASE_URL, OPENAI_API_KEY.`,
    );
  return program;
}

/** Maps commander's own exits (help, version, usage errors) to the contract's codes. */
export function commanderExitCode(err: CommanderError): number {
  if (
    err.code === "commander.helpDisplayed" ||
    err.code === "commander.version" ||
    err.code === "commander.help"
  ) {
    return ExitCode.ok;
  }
  return ExitCode.badInput;
}
