import type { Command } from "commander";

/**
 * Every subcommand of the contract, one file each, in the order `--help`
 * lists them. Each is imported only when it may be needed: a replica
 * (`swarm worker`) then never loads the orchestrator, the launcher or the
 * bench, which would cost it memory for as long as it runs.
 */
const COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  deploy: async () => (await import("./commands/deploy.ts")).registerDeployCommand,
  up: async () => (await import("./commands/up.ts")).registerUpCommand,
  orchestrator: async () =>
    (await import("./commands/orchestrator.ts")).registerOrchestratorCommand,
  worker: async () => (await import("./commands/worker.ts")).registerWorkerCommand,
  submit: async () => (await import("./commands/submit.ts")).registerSubmitCommand,
  plan: async () => (await import("./commands/plan.ts")).registerPlanCommand,
  watch: async () => (await import("./commands/watch.ts")).registerWatchCommand,
  status: async () => (await import("./commands/status.ts")).registerStatusCommand,
  cancel: async () => (await import("./commands/cancel.ts")).registerCancelCommand,
  approve: async () => (await import("./commands/approve.ts")).registerApproveCommand,
  deny: async () => (await import("./commands/deny.ts")).registerDenyCommand,
  audit: async () => (await import("./commands/audit.ts")).registerAuditCommand,
  diff: async () => (await import("./commands/diff.ts")).registerDiffCommand,
  log: async () => (await import("./commands/log.ts")).registerLogCommand,
  export: async () => (await import("./commands/export.ts")).registerExportCommand,
  deliver: async () => (await import("./commands/deliver.ts")).registerDeliverCommand,
  revert: async () => (await import("./commands/revert.ts")).registerRevertCommand,
  bench: async () => (await import("./commands/bench.ts")).registerBenchCommand,
  dashboard: async () => (await import("./commands/dashboard.ts")).registerDashboardCommand,
  completion: async () => (await import("./commands/completion.ts")).registerCompletionCommand,
  "nats-config": async () => (await import("./commands/nats-config.ts")).registerNatsConfigCommand,
};

/** Names of every subcommand, in help order. */
export const COMMAND_NAMES = Object.keys(COMMANDS);

/**
 * Registers the subcommand `args` names (args as after `node main.ts`), or
 * every subcommand when it names none of them (`--help`, `help worker`, a
 * typo: commander then lists or suggests them all as before), or when it is
 * `completion`, whose script lists them all. The program itself takes no
 * option with a value, so the first word that is not an option is the
 * subcommand.
 */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const named = args.find((a) => !a.startsWith("-"));
  const names =
    named !== undefined && named !== "completion" && Object.hasOwn(COMMANDS, named)
      ? [named]
      : COMMAND_NAMES;
  const registers = await Promise.all(names.map((n) => COMMANDS[n]!()));
  for (const register of registers) register(program);
}
