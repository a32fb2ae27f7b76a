/**
 * Runs `handler` once on the first SIGTERM or SIGINT; a second signal exits
 * at once (a person pressing Ctrl-C twice means it).
 */
export function onShutdownSignal(handler: (signal: NodeJS.Signals) => Promise<void>): void {
  let started = false;
  const on = (signal: NodeJS.Signals) => {
    if (started) process.exit(130);
    started = true;
    handler(signal).catch((err: unknown) => {
      process.stderr.write(`shutdown failed: ${String(err)}\n`);
      process.exitCode = 1;
    });
  };
  process.on("SIGTERM", on);
  process.on("SIGINT", on);
}
