/** Env var the launcher sets for its children: its own pid (see `onShutdownSignal`). */
export const PARENT_PID_ENV = "SWARM_PARENT_PID";
/** How often a launched child checks that its launcher is still there. */
const PARENT_POLL_MS = 1000;

/**
 * Runs `handler` once on the first SIGTERM or SIGINT; a second signal exits
 * at once (a person pressing Ctrl-C twice means it). A process started by
 * the launcher (SWARM_PARENT_PID set) also stops, as on SIGTERM, when the
 * launcher is gone: a SIGKILLed launcher can't stop its children, and Linux
 * re-parents them (their ppid changes), so they notice within a second.
 */
export function onShutdownSignal(
  handler: (signal: NodeJS.Signals) => Promise<void>,
  env: NodeJS.ProcessEnv = process.env,
): void {
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

  const parent = Number(env[PARENT_PID_ENV]);
  if (!Number.isInteger(parent) || parent <= 1) return;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    if (started) return;
    process.stderr.write(`launcher (pid ${parent}) is gone; stopping\n`);
    on("SIGTERM");
  }, PARENT_POLL_MS);
  watch.unref();
}
