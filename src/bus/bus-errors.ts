/**
 * Which errors are the bus's: the NATS client's and JetStream's own error
 * classes. A command that ends with one exits 3 (infrastructure), like an
 * InfrastructureError, never 1 ("mission failed") or 4 (a defect of ours).
 */
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import {
  AuthorizationError,
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  ProtocolError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";

const BUS_ERRORS = [
  AuthorizationError,
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  ProtocolError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
  JetStreamError,
  JetStreamApiError,
];

/** Is `err` (or what it wraps, one `cause` deep) an error of the NATS client or JetStream? */
export function isBusError(err: unknown): boolean {
  const isOne = (e: unknown) => BUS_ERRORS.some((c) => e instanceof c);
  return isOne(err) || (err instanceof Error && isOne(err.cause));
}

/** What a person can do about a bus error, when there is something to say. */
export function busErrorHint(err: unknown): string | undefined {
  const e = err instanceof Error && !(err instanceof PermissionViolationError) ? err.cause : err;
  if (err instanceof PermissionViolationError || e instanceof PermissionViolationError) {
    return (
      "the NATS user this command connected as may not do that: use the credentials of a role " +
      "that may (docs/security.md lists each role's permissions)"
    );
  }
  if (err instanceof AuthorizationError || e instanceof AuthorizationError) {
    return "check the NATS credentials (NATS_URL, NATS_CREDS, NATS_NKEY, NATS_TOKEN)";
  }
  return undefined;
}
