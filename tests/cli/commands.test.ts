import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { COMMAND_NAMES, registerCommands } from "../../src/cli/commands.ts";

const registered = async (args: string[]) => {
  const program = new Command("swarm");
  await registerCommands(program, args);
  return program.commands.map((c) => c.name());
};

describe("registerCommands", () => {
  it("registers only the subcommand the arguments name", async () => {
    expect(await registered(["worker", "--agent", "builder"])).toEqual(["worker"]);
    expect(await registered(["deny", "m-1.t1.1.1"])).toEqual(["deny"]);
  });

  it("registers every subcommand, in help order, when none is named", async () => {
    const all = await registered(["--help"]);
    expect(all).toEqual(COMMAND_NAMES);
    expect(all).toContain("bench");
    expect(await registered([])).toEqual(COMMAND_NAMES);
    expect(await registered(["help", "worker"])).toEqual(COMMAND_NAMES);
    expect(await registered(["wrker"])).toEqual(COMMAND_NAMES); // commander suggests "worker"
  });
});
