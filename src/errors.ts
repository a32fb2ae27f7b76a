/** Exit codes of the contract. */
export const ExitCode = {
  ok: 0,
  missionFailed: 1,
  badInput: 2,
  infrastructure: 3,
  /** A defect of Squad itself (an error nothing anticipated): please report it. */
  internal: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Bad brief, flag, roster or config: the user must change something (exit 2). */
export class BadInputError extends Error {
  override readonly name: string = "BadInputError";
  readonly exitCode = ExitCode.badInput;
}

/** NATS, a model server or a binary is unavailable (exit 3). `hint` says how to fix it. */
export class InfrastructureError extends Error {
  override readonly name: string = "InfrastructureError";
  readonly exitCode = ExitCode.infrastructure;
  readonly hint: string | undefined;
  constructor(message: string, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.hint = hint;
  }
}

/** The work itself ran and failed (a planner that gave up, say): exit 1, like a failed mission. */
export class WorkFailedError extends Error {
  override readonly name: string = "WorkFailedError";
  readonly exitCode = ExitCode.missionFailed;
}

/**
 * Exit code for any error thrown out of a command. `infrastructure` says
 * whether the caller recognised it as a failure of NATS or another service
 * (src/bus/bus-errors.ts knows the client's error classes; this file sits
 * below every layer and imports none of them). Anything unrecognised is a
 * defect of ours, with its own code, never "mission failed".
 */
export function exitCodeFor(err: unknown, infrastructure = false): ExitCode {
  if (err instanceof BadInputError) return ExitCode.badInput;
  if (err instanceof Error && err.name === "SchemaValidationError") return ExitCode.badInput;
  if (err instanceof InfrastructureError || infrastructure) return ExitCode.infrastructure;
  if (err instanceof WorkFailedError) return ExitCode.missionFailed;
  return ExitCode.internal;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
