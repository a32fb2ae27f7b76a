import net from "node:net";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { startTracing } from "../telemetry/index.ts";
import {
  authenticatorFor,
  describeAuth,
  refusePlaceholder,
  tlsOptionsFor,
  type NatsAuth,
  type NatsTls,
} from "./nats-auth.ts";

export type { NatsConnection };

export interface ConnectBusOptions {
  servers: string | string[];
  /** Connection name, shown by the server (`nats server report connections`). */
  name: string;
  /** Credentials (src/bus/nats-auth.ts); `user`/`pass` and `user:pass@` in the URL still work. */
  auth?: NatsAuth;
  user?: string;
  pass?: string;
  /** TLS: a CA to trust, a client certificate and key. */
  tls?: NatsTls;
  /** Needed when the user may only subscribe on its own inbox prefix. */
  inboxPrefix?: string;
  log?: Logger;
  /** Timeout of the first connect. Default 5 s. */
  timeoutMs?: number;
  /** Wait between reconnect attempts. Default 1 s. */
  reconnectTimeWaitMs?: number;
}

const HINT =
  "start nats-server with JetStream (`nats-server -js`, or `docker compose up nats`) " +
  "or set NATS_URL to a server that runs";

/**
 * A named connection that reconnects forever: a worker or orchestrator outlives
 * a server restart. Only the first connect can fail, with an InfrastructureError
 * (exit 3) naming the server and the method, never the secret. The shipped
 * placeholder passwords are refused before connecting (exit 2). A server that
 * accepts clients without authentication is connected to with a warning.
 * Tracing starts here (src/telemetry/tracing.ts), off unless OTEL_* asks.
 */
export async function connectBus(opts: ConnectBusOptions): Promise<NatsConnection> {
  const log = opts.log ?? silentLogger;
  const { servers, user, pass } = splitCredentials(opts.servers);
  const where = servers.join(", ");
  const auth = opts.auth ?? userAuth(opts.user ?? user, opts.pass ?? pass);
  refusePlaceholder(auth);
  const method = describeAuth(auth, opts.tls);
  const authenticator = auth ? await authenticatorFor(auth) : undefined;
  // Every process that joins the swarm connects here first: its traces start now when
  // OTEL_* asks for them (a bad OTEL_* value is bad input, exit 2).
  await startTracing({ serviceName: `squad-${opts.name}` });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      ...(authenticator ? { authenticator } : {}),
      ...(opts.tls ? { tls: tlsOptionsFor(opts.tls) } : {}),
      inboxPrefix: opts.inboxPrefix,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      timeout: opts.timeoutMs ?? 5000,
      // Every request (publish, KV, pull) would otherwise build an Error up front for its
      // stack trace; ours wrap failures with their own context (InfrastructureError).
      noAsyncTraces: true,
    });
  } catch (err) {
    if (err instanceof errors.AuthorizationError || isAuthRefusal(err)) {
      throw new InfrastructureError(
        `NATS at ${where} refused the credentials (${method}): ${(err as Error).message}`,
        auth
          ? "check the credential against the server's authorization block " +
              "(NATS_CREDS, NATS_NKEY, NATS_TOKEN, NATS_USER/NATS_PASS or user:pass@ in the URL); " +
              "on this machine `swarm` commands find the launcher's server and their role's seed " +
              "in SWARM_STATE_DIR (default .swarm/state) by themselves"
          : "the server requires credentials: set NATS_CREDS, NATS_NKEY, NATS_TOKEN or NATS_USER/NATS_PASS",
        { cause: err },
      );
    }
    if (isTlsFailure(err)) {
      throw new InfrastructureError(
        `NATS at ${where}: the TLS connection failed (${method}): ${(err as Error).message}`,
        "check NATS_CA (the CA that signed the server's certificate), NATS_CERT / NATS_KEY, " +
          "and that the URL names the host in the certificate",
        { cause: err },
      );
    }
    throw new InfrastructureError(
      `NATS is not reachable at ${where}: ${(err as Error).message}`,
      HINT,
      { cause: err },
    );
  }
  log.info({ server: nc.getServer(), connection: opts.name, auth: method }, "connected to NATS");
  if (nc.info && !nc.info.auth_required) {
    log.warn(
      { server: nc.getServer() },
      "NATS accepts clients without authentication: anyone who reaches it can read and forge " +
        "every event and delete the streams (docs/security.md)",
    );
  }
  void logStatus(nc, log);
  return nc;
}

function userAuth(user: string | undefined, pass: string | undefined): NatsAuth | undefined {
  return user ? { method: "user", user, ...(pass !== undefined ? { pass } : {}) } : undefined;
}

/** The server closed the connection over the credentials (not always an AuthorizationError). */
function isAuthRefusal(err: unknown): boolean {
  for (let e: unknown = err, d = 0; e instanceof Error && d < 5; d++, e = e.cause) {
    if (
      /authorization violation|authentication (expired|revoked)|user authentication/i.test(
        e.message,
      )
    )
      return true;
  }
  return false;
}

function isTlsFailure(err: unknown): boolean {
  for (let e: unknown = err, d = 0; e instanceof Error && d < 5; d++, e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)) return true;
    if (/\btls\b|certificate|ssl/i.test(e.message)) return true;
  }
  return false;
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    switch (s.type) {
      case "disconnect":
        log.warn({ server: s.server }, "NATS disconnected; reconnecting");
        break;
      case "reconnect":
        log.info({ server: s.server }, "NATS reconnected");
        break;
      case "error":
        log.error({ err: s.error.message }, "NATS connection error");
        break;
      case "ldm":
        log.warn({ server: s.server }, "NATS server entering lame duck mode");
        break;
      case "slowConsumer":
        log.warn({ subject: s.sub.getSubject(), pending: s.pending }, "NATS slow consumer");
        break;
      case "staleConnection":
        log.warn("NATS connection stale");
        break;
      default:
        break;
    }
  }
}

/** host and port of a NATS URL ("nats://h:4222", "h:4222", "tls://h"). */
export function natsHostPort(url: string): { host: string; port: number } {
  const withScheme = /^[a-z]+:\/\//i.test(url) ? url : `nats://${url}`;
  const u = new URL(withScheme);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  return { host, port: u.port ? Number(u.port) : 4222 };
}

/**
 * Does something that speaks NATS answer at `url` within `timeoutMs`? A raw
 * TCP probe waiting for the server's INFO line, so it answers true for a
 * server that requires credentials too (the launcher must not start a second one).
 */
export async function natsAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  return (await natsServerInfo(url, timeoutMs)) !== null;
}

/** What a NATS server says of itself before any client authenticates. */
export interface NatsServerHello {
  server_id?: string;
  version?: string;
  /** Clients must authenticate (absent or false: anyone may connect). */
  auth_required?: boolean;
  tls_required?: boolean;
  jetstream?: boolean;
}

/**
 * The INFO line of the server at `url` (raw TCP, no credentials sent), or
 * null when nothing that speaks NATS answers within `timeoutMs`.
 */
export async function natsServerInfo(
  url: string,
  timeoutMs = 1000,
): Promise<NatsServerHello | null> {
  let target: { host: string; port: number };
  try {
    target = natsHostPort(url);
  } catch {
    return null;
  }
  return new Promise((resolve) => {
    const socket = net.connect(target);
    let buf = "";
    const done = (info: NatsServerHello | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(info);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.length >= 5 && !buf.startsWith("INFO ")) return done(null);
      const end = buf.indexOf("\r\n");
      if (end < 0) return;
      try {
        done(JSON.parse(buf.slice(5, end)) as NatsServerHello);
      } catch {
        done({});
      }
    });
    socket.on("error", () => done(null));
    socket.on("close", () => done(null));
  });
}

/**
 * `nats://user:pass@host:4222` (as docker-compose.yml passes it) → servers
 * without the credentials, which then never reach a log line or an error.
 */
export function splitCredentials(servers: string | string[]): {
  servers: string[];
  user?: string;
  pass?: string;
} {
  let user: string | undefined;
  let pass: string | undefined;
  const clean = (Array.isArray(servers) ? servers : servers.split(",")).map((raw) => {
    const s = raw.trim();
    const m = /^([a-z]+:\/\/)?([^@/]+)@(.+)$/i.exec(s);
    if (!m) return s;
    const [u, p] = m[2]!.split(":");
    user ??= decodeURIComponent(u ?? "");
    if (p !== undefined) pass ??= decodeURIComponent(p);
    return `${m[1] ?? ""}${m[3]}`;
  });
  return { servers: clean, ...(user ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}
