import { errors } from "@nats-io/transport-node";

/** A NATS permissions violation, anywhere in the cause chain. */
export function isPermissionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof errors.PermissionViolationError) return true;
    if (/permissions violation/i.test(e.message)) return true;
    e = e.cause;
  }
  return false;
}
