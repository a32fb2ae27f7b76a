/**
 * `swarm dashboard`, the process: the state, the feed that fills it from
 * NATS and the HTTP server that shows it. The CLI gives what belongs to it:
 * how to connect (the watcher's credentials), the actions (the operator's)
 * and the filters of `swarm watch`.
 */
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import type { NatsConnection } from "../bus/index.ts";
import { InfrastructureError, errorMessage } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { isLoopbackHost } from "./access.ts";
import type { DashboardActions } from "./actions.ts";
import { createDashboardState, type DashboardState } from "./dashboard-state.ts";
import type { LogFilterFactory } from "./event-log.ts";
import { createHttpServer } from "./http-server.ts";
import { startSwarmFeed } from "./swarm-feed.ts";

export interface DashboardOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  token: string;
  connect: () => Promise<NatsConnection>;
  actions: DashboardActions;
  filters: LogFilterFactory;
  log?: Logger;
  /** Consumer and DLQ counts polled this often. Default 2000 ms. */
  pollMs?: number;
}

export interface Dashboard {
  /** `http://<host>:<port>/` */
  url: string;
  port: number;
  state: DashboardState;
  stop(): Promise<void>;
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const log = opts.log ?? silentLogger;
  const state = createDashboardState();
  const server = await createHttpServer({
    state,
    actions: opts.actions,
    filters: opts.filters,
    token: opts.token,
    log,
    loopbackOnly: isLoopbackHost(opts.host),
  });
  server.listen(opts.port, opts.host);
  try {
    await Promise.race([
      once(server, "listening"),
      once(server, "error").then(([err]) => Promise.reject(err as Error)),
    ]);
  } catch (err) {
    throw new InfrastructureError(
      `the dashboard cannot listen on ${opts.host}:${opts.port}: ${errorMessage(err)}`,
      "choose another --port (or --port 0 for any free one), or stop what uses it",
    );
  }
  const port = (server.address() as AddressInfo).port;
  const feed = startSwarmFeed({
    connect: opts.connect,
    onEvent: (e) => state.onEvent(e),
    onSummary: (s) => state.onSummary(s),
    onDeadLetter: (r, s) => state.onDeadLetter(r, s),
    onNats: (s) => {
      if (s.state !== state.nats.state || s.detail !== state.nats.detail)
        log.info({ nats: s.state, detail: s.detail }, "dashboard NATS state");
      state.onNats(s);
    },
    onLoad: (l) => state.onLoad(l),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    log,
  });
  state.setHistoryLoader((id, range) => feed.loadMission(id, range));
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/`,
    port,
    state,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await feed.stop();
    },
  };
}
