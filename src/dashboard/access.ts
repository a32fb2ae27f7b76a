/**
 * Who may act through the dashboard (pure): the token that actions carry,
 * and which addresses it may listen on. Reading needs no token (the page
 * shows what `swarm watch` shows); approve, deny and cancel do. Listening on
 * an address other hosts reach is refused unless the token was chosen
 * (SWARM_DASHBOARD_TOKEN), not only printed to one terminal.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { BadInputError } from "../errors.ts";

/** A fresh token: 24 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/** The token from `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

/** Constant-time comparison of a request's token with the dashboard's. */
export function tokenMatches(given: string | null, expected: string): boolean {
  if (given === null || expected.length === 0) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1";
  return false;
}

/**
 * The token the dashboard uses: the chosen one, or a new one when it
 * listens on loopback only. A non-loopback host without a chosen token is
 * bad input (exit 2).
 */
export function resolveToken(
  host: string,
  chosen: string | undefined,
): {
  token: string;
  generated: boolean;
} {
  const given = chosen?.trim();
  if (given) {
    if (given.length < 16)
      throw new BadInputError(
        "SWARM_DASHBOARD_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)",
      );
    return { token: given, generated: false };
  }
  if (!isLoopbackHost(host)) {
    throw new BadInputError(
      `refusing to listen on ${host} without a token: anyone who reaches it could approve commands and cancel missions; ` +
        "set SWARM_DASHBOARD_TOKEN (at least 16 characters), or use --host 127.0.0.1",
    );
  }
  return { token: newToken(), generated: true };
}
