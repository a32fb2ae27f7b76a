/**
 * A process's health endpoint: `GET /healthz` answers 200 with a small JSON
 * report while the process can do its job (connected to NATS, not stopping),
 * else 503 with the same report saying why. Container healthchecks
 * (docker-compose.yml, the Dockerfile's HEALTHCHECK) and load balancers poll
 * it. `GET /metrics` on the same port is the process's Prometheus metrics
 * (src/telemetry/metrics.ts; docs/operations.md lists them). Off unless
 * SWARM_HEALTH_PORT is set; binds SWARM_HEALTH_HOST (default 127.0.0.1: a
 * healthcheck runs inside the container; 0.0.0.0 for a Prometheus elsewhere).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { NatsConnection } from "../bus/index.ts";
import { BadInputError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { enableMetrics, metricsText } from "../telemetry/index.ts";

export type NatsLinkState = "connected" | "reconnecting" | "closed";

/** What a process knows of itself. */
export interface HealthFacts {
  role: "orchestrator" | "worker";
  instance: string;
  agent?: string;
  nats: NatsLinkState;
  stopping: boolean;
  /** A worker's tasks in flight. */
  in_flight?: number;
  /** An orchestrator's missions. */
  missions?: number;
  /** Events its event guard refused since start (forged, unsigned, from the wrong role). */
  refused_events?: number;
}

export interface HealthReport extends HealthFacts {
  status: "ok" | "unavailable";
  /** Why it is unavailable (absent when ok). */
  reason?: string;
}

/** The connection's state as the client's status events tell it (reconnecting between a disconnect and a reconnect). */
export function followNatsLink(nc: NatsConnection): () => NatsLinkState {
  let state: NatsLinkState = "connected";
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnecting") state = "reconnecting";
      else if (s.type === "reconnect") state = "connected";
    }
  })();
  void nc.closed().then(() => (state = "closed"));
  return () => state;
}

/** The report of a process from its parts: ok only while connected and not stopping. */
export function healthReport(base: Omit<HealthReport, "status" | "reason">): HealthReport {
  const reason =
    base.nats !== "connected"
      ? `NATS connection ${base.nats}`
      : base.stopping
        ? "stopping (draining)"
        : undefined;
  return { status: reason ? "unavailable" : "ok", ...base, ...(reason ? { reason } : {}) };
}

const HealthEnv = z.object({
  SWARM_HEALTH_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  SWARM_HEALTH_HOST: z.string().min(1).default("127.0.0.1"),
});

/** Where to listen, from the environment; null when the endpoint is off. */
export function healthListen(env: NodeJS.ProcessEnv): { port: number; host: string } | null {
  const r = HealthEnv.safeParse({
    SWARM_HEALTH_PORT: env.SWARM_HEALTH_PORT || undefined,
    SWARM_HEALTH_HOST: env.SWARM_HEALTH_HOST || undefined,
  });
  if (!r.success) {
    throw new BadInputError(
      `invalid SWARM_HEALTH_PORT / SWARM_HEALTH_HOST: ${r.error.issues.map((i) => i.message).join("; ")}`,
    );
  }
  return r.data.SWARM_HEALTH_PORT === undefined
    ? null
    : { port: r.data.SWARM_HEALTH_PORT, host: r.data.SWARM_HEALTH_HOST };
}

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

export async function startHealthServer(opts: {
  port: number;
  host: string;
  report: () => HealthReport;
  log: Logger;
}): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metricsText().then(
        ({ contentType, body }) =>
          res
            .writeHead(200, { "content-type": contentType, "cache-control": "no-store" })
            .end(req.method === "HEAD" ? undefined : body),
        (err: unknown) => {
          opts.log.error({ err: (err as Error).message }, "metrics collection failed");
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
        },
      );
      return;
    }
    if (path !== "/healthz") {
      res
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: try /healthz or /metrics\n");
      return;
    }
    const report = opts.report();
    res
      .writeHead(report.status === "ok" ? 200 : 503, {
        "content-type": "application/json",
        "cache-control": "no-store",
      })
      .end(req.method === "HEAD" ? undefined : `${JSON.stringify(report)}\n`);
  });
  // Counting starts with the server, whoever scrapes it later (prom-client loads now).
  await enableMetrics();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new BadInputError(
          `cannot serve the health endpoint on ${opts.host}:${opts.port}: ${err.message}`,
        ),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}/healthz`;
  opts.log.info(
    { url, metrics: url.replace(/\/healthz$/, "/metrics") },
    "health endpoint listening",
  );
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
