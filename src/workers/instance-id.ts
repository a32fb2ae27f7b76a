import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * A replica's instance id: part of `squad.status.<agent>.<instance>` and of
 * the `worker` field, so it must be subject-safe. Host + pid make `ps` and
 * the event stream easy to match up; random bytes keep restarts distinct.
 */
export function newInstanceId(): string {
  const host = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 24);
  return `${host}-${process.pid}-${randomBytes(2).toString("hex")}`;
}
