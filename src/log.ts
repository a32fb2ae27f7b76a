import pino, { type Logger } from "pino";

export type { Logger };

/** Keys whose values never reach a log line. */
export const REDACT_PATHS = [
  "password",
  "pass",
  "token",
  "apiKey",
  "api_key",
  "authorization",
  "*.password",
  "*.pass",
  "*.token",
  "*.apiKey",
  "*.api_key",
  "*.authorization",
  "env.OPENAI_API_KEY",
  "*.env.OPENAI_API_KEY",
];

/**
 * JSON logs on stderr (stdout is reserved for command output such as
 * `--json`); pretty when stderr is a terminal. SWARM_LOG_LEVEL sets the level;
 * without it, services (orchestrator, workers) log at info and the commands a
 * person runs (watch, submit, ...) at `defaultLevel` "warn": their output is
 * the answer, the log only what went wrong.
 */
export function createLogger(
  name: string,
  bindings: Record<string, unknown> = {},
  opts: { defaultLevel?: "info" | "warn" } = {},
): Logger {
  const level = process.env.SWARM_LOG_LEVEL ?? opts.defaultLevel ?? "info";
  const pretty = process.stderr.isTTY && process.env.SWARM_LOG_FORMAT !== "json";
  const transport = pretty
    ? pino.transport({ target: "pino-pretty", options: { destination: 2, colorize: true } })
    : pino.destination({ fd: 2, sync: false });
  return pino(
    {
      name,
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { pid: process.pid, ...bindings },
    },
    transport,
  );
}

/** A logger that drops everything (tests and library callers that pass none). */
export const silentLogger: Logger = pino({ level: "silent" });
