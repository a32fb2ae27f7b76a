import { Argument, type Command } from "commander";
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from "../completion.ts";

/**
 * `swarm completion bash|zsh`. registerCommands registers every subcommand
 * when this one runs, so the script is made from the whole program.
 */
export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script (bash or zsh) for swarm")
    .addArgument(new Argument("<shell>", "the shell").choices(COMPLETION_SHELLS))
    .addHelpText(
      "after",
      `
Examples:
  $ source <(swarm completion bash)                      this shell
  $ swarm completion bash > ~/.local/share/bash-completion/completions/swarm
  $ swarm completion zsh > "\${fpath[1]}/_swarm"           then restart zsh`,
    )
    .action((shell: CompletionShell) => {
      process.stdout.write(completionScript(program, shell));
    });
}
