import net from "node:net";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";

export type { NatsConnection };

export interface ConnectBusOptions {
  servers: string | string[];
  /** Connection name, shown by the server (`nats server report connections`). */
  name: string;
  user?: string;
  pass?: string;
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
 * a server restart. Only the first connect can fail, with an InfrastructureError.
 */
export async function connectBus(opts: ConnectBusOptions): Promise<NatsConnection> {
  const log = opts.log ?? silentLogger;
  const { servers, user, pass } = splitCredentials(opts.servers);
  const where = servers.join(", ");
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      user: opts.user ?? user,
      pass: opts.pass ?? pass,
      inboxPrefix: opts.inboxPrefix,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      timeout: opts.timeoutMs ?? 5000,
      // Every request (publish, KV, pull) would otherwise build an Error up front for its
      // stack trace; ours wrap failures with their own context (InfrastructureError).
      noAsyncTraces: true,
    });
  } catch (err) {
    if (err instanceof errors.AuthorizationError) {
      throw new InfrastructureError(
        `NATS at ${where} refused the credentials: ${(err as Error).message}`,
        "check NATS_USER / NATS_PASS against the server's authorization block",
        { cause: err },
      );
    }
    throw new InfrastructureError(
      `NATS is not reachable at ${where}: ${(err as Error).message}`,
      HINT,
      { cause: err },
    );
  }
  log.info({ server: nc.getServer(), name: opts.name }, "connected to NATS");
  void logStatus(nc, log);
  return nc;
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
  let target: { host: string; port: number };
  try {
    target = natsHostPort(url);
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const socket = net.connect(target);
    let buf = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.length >= 5) done(buf.startsWith("INFO "));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
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
