/** Exit codes of the contract. */
export const ExitCode = {
  ok: 0,
  missionFailed: 1,
  badInput: 2,
  infrastructure: 3,
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

/** Exit code for any error thrown out of a command. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof BadInputError) return ExitCode.badInput;
  if (err instanceof InfrastructureError) return ExitCode.infrastructure;
  if (err instanceof Error && err.name === "SchemaValidationError") return ExitCode.badInput;
  return ExitCode.missionFailed;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
