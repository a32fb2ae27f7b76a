import type { Command } from "commander";
import { registerApproveCommand } from "./commands/approve.ts";
import { registerAuditCommand } from "./commands/audit.ts";
import { registerBenchCommand } from "./commands/bench.ts";
import { registerCancelCommand } from "./commands/cancel.ts";
import { registerDenyCommand } from "./commands/deny.ts";
import { registerDeployCommand } from "./commands/deploy.ts";
import { registerOrchestratorCommand } from "./commands/orchestrator.ts";
import { registerPlanCommand } from "./commands/plan.ts";
import { registerStatusCommand } from "./commands/status.ts";
import { registerSubmitCommand } from "./commands/submit.ts";
import { registerUpCommand } from "./commands/up.ts";
import { registerWatchCommand } from "./commands/watch.ts";
import { registerWorkerCommand } from "./commands/worker.ts";

/** Every subcommand of the contract is registered here, one file each. */
export function registerCommands(program: Command): void {
  registerDeployCommand(program);
  registerUpCommand(program);
  registerOrchestratorCommand(program);
  registerWorkerCommand(program);
  registerSubmitCommand(program);
  registerPlanCommand(program);
  registerWatchCommand(program);
  registerStatusCommand(program);
  registerCancelCommand(program);
  registerApproveCommand(program);
  registerDenyCommand(program);
  registerAuditCommand(program);
  registerBenchCommand(program);
}
