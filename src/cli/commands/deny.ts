import type { Command } from "commander";
import { registerDecisionCommand } from "./approve.ts";

export function registerDenyCommand(program: Command): void {
  registerDecisionCommand(program, "deny", "denied");
}
