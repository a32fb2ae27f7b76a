import type { z } from "zod";

/**
 * A boundary value (NATS message, brief, roster, model output, config) that
 * does not match its schema. The message names every offending field so a
 * person can act on it without reading a stack trace.
 */
export class SchemaValidationError extends Error {
  override readonly name = "SchemaValidationError";
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(what: string, error: z.ZodError) {
    const issues = error.issues.map((i) => ({
      path: i.path.length ? i.path.map(String).join(".") : "(root)",
      message: i.message,
    }));
    super(`invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
    this.issues = issues;
  }
}

/** Parse `value` with `schema`, throwing a SchemaValidationError that names `what`. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new SchemaValidationError(what, r.error);
  return r.data;
}
