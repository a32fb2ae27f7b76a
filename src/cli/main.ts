import { CommanderError } from "commander";
import { busErrorHint, isBusError } from "../bus/bus-errors.ts";
import { errorMessage, ExitCode, exitCodeFor, InfrastructureError } from "../errors.ts";
import { commanderExitCode, createProgram } from "./program.ts";
import { registerCommands } from "./commands.ts";

// `swarm watch | head` closes our stdout early: that ends the output, it is not a crash.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

const program = createProgram();

try {
  await registerCommands(program, process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = commanderExitCode(err);
  } else {
    const code = exitCodeFor(err, isBusError(err));
    process.stderr.write(`swarm: ${errorMessage(err)}\n`);
    const hint = err instanceof InfrastructureError ? err.hint : busErrorHint(err);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    if (code === ExitCode.internal) {
      process.stderr.write(
        `swarm: this is a defect of swarm itself (exit ${code}); please report it with this output:\n` +
          `${err instanceof Error ? err.stack : String(err)}\n`,
      );
    }
    // A command that failed half-way may leave a NATS connection (it reconnects forever) or
    // timers behind, which would keep the process alive: a launcher would then wait for an
    // exit that never comes instead of restarting it. The error is written (synchronously
    // to a pipe or file on Linux): end here.
    process.exit(code);
  }
}
