import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { connectBus, createPublisher, type NatsConnection } from "../../bus/index.ts";
import { startDashboard, type Dashboard } from "../../dashboard/dashboard.ts";
import { resolveToken } from "../../dashboard/access.ts";
import type { DashboardActions } from "../../dashboard/actions.ts";
import type { LogFilterFactory } from "../../dashboard/event-log.ts";
import type { DashboardState } from "../../dashboard/dashboard-state.ts";
import type { SwarmEnv } from "../../config.ts";
import { BadInputError, errorMessage } from "../../errors.ts";
import { createLogger, type Logger } from "../../log.ts";
import { makeEvent } from "../../schema/index.ts";
import { openCliGuard } from "../cli-guard.ts";
import {
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
  type Resolved,
} from "../options.ts";
import { onShutdownSignal } from "../signals.ts";
import {
  checkAgentName,
  checkMissionId,
  createWatchFilter,
  parseTypeList,
} from "../watch-filter.ts";
import { decideApproval, decisionReason } from "./approve.ts";
import {
  launcherConnectOptions,
  signingEnv,
  type SwarmCredentials,
} from "../launcher/swarm-credentials.ts";

export const DEFAULT_DASHBOARD_PORT = 7800;

interface DashboardFlags extends CommonFlags {
  port: string;
  host: string;
}

export function registerDashboardCommand(program: Command): void {
  withCommonOptions(
    program
      .command("dashboard")
      .description(
        "a live web view of the swarm: missions, plans, tasks, agents, approvals, events",
      )
      .option(
        "--port <port>",
        "port to listen on (0: any free port)",
        String(DEFAULT_DASHBOARD_PORT),
      )
      .option(
        "--host <host>",
        "address to listen on; other than loopback only with SWARM_DASHBOARD_TOKEN",
        "127.0.0.1",
      ),
  )
    .addHelpText(
      "after",
      `
Reads NATS only, with the watcher's permissions: the history of SQUAD_EVENTS
and SQUAD_STATUS, then live events. Approve, deny and cancel need the token it
prints at start (or SWARM_DASHBOARD_TOKEN) and are published with the
operator's credentials, exactly as \`swarm approve\`, \`deny\` and \`cancel\` do.
Every asset is served by the dashboard itself (it works offline).

Examples:
  $ swarm dashboard                         http://127.0.0.1:7800/
  $ swarm dashboard --port 0                any free port
  $ SWARM_DASHBOARD_TOKEN=$(openssl rand -hex 24) swarm dashboard --host 0.0.0.0

Exit codes: 0 stopped (Ctrl-C), 2 bad flags or a non-loopback --host without
SWARM_DASHBOARD_TOKEN, 3 the port cannot be bound.`,
    )
    .action(async (flags: DashboardFlags) => {
      const port = parsePort(flags.port);
      const common = resolveCommon(flags);
      const { token, generated } = resolveToken(flags.host, process.env.SWARM_DASHBOARD_TOKEN);
      const log = createLogger("dashboard", {}, { defaultLevel: "info" });
      const dashboard = await runDashboard(
        environmentWiring(common, { host: flags.host, port, token, log }),
      );
      process.stdout.write(
        `dashboard: ${dashboard.url}\n` +
          (generated
            ? `token: ${token}\nopen ${dashboard.url}#token=${token} to act (approve, deny, cancel)\n`
            : "token: from SWARM_DASHBOARD_TOKEN\n"),
      );
      await new Promise<void>((resolve) =>
        onShutdownSignal(async () => {
          await dashboard.stop();
          resolve();
        }),
      );
    });
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new BadInputError(`--port ${JSON.stringify(value)}: give a port number from 0 to 65535`);
  return n;
}

/** How the dashboard reaches NATS: as the watcher to read, as the operator to act. */
export interface DashboardWiring {
  host: string;
  port: number;
  token: string;
  log: Logger;
  connect(role: "watcher" | "operator", name: string): Promise<NatsConnection>;
  /** Where the operator's signature comes from (NATS_NKEY, SWARM_IDENTITIES). Default process.env. */
  signingEnv?: NodeJS.ProcessEnv;
}

/** The dashboard with the CLI's connection, actions and filters. */
export async function runDashboard(wiring: DashboardWiring): Promise<Dashboard> {
  let state: DashboardState | null = null;
  const dashboard = await startDashboard({
    host: wiring.host,
    port: wiring.port,
    token: wiring.token,
    log: wiring.log,
    connect: () => wiring.connect("watcher", "swarm-dashboard"),
    actions: cliActions(wiring, () => state),
    filters: watchFilters,
  });
  state = dashboard.state;
  return dashboard;
}

/** `swarm dashboard`: the credentials of the environment, as `swarm watch` and `swarm approve` use them. */
function environmentWiring(
  common: Resolved,
  opts: { host: string; port: number; token: string; log: Logger },
): DashboardWiring {
  return {
    ...opts,
    connect: async (role, name) =>
      connectBus({
        ...(await clientConnectOptions(common, name, { role })),
        log: opts.log,
        timeoutMs: 3000,
      }),
  };
}

/**
 * The dashboard of `deploy-swarm`: the launcher's server and identities, on
 * loopback, on the default port or any free one when that is taken. Never
 * fails the deploy: null (and a line in the deploy log) when it cannot start.
 */
export async function startLauncherDashboard(opts: {
  credentials: SwarmCredentials;
  url: string;
  env: SwarmEnv;
  log: Logger;
}): Promise<{ dashboard: Dashboard; token: string } | null> {
  const { token } = resolveToken("127.0.0.1", process.env.SWARM_DASHBOARD_TOKEN);
  const wiring = (port: number): DashboardWiring => ({
    host: "127.0.0.1",
    port,
    token,
    log: opts.log,
    connect: (role, name) =>
      connectBus({
        ...launcherConnectOptions(opts.credentials, { role }, opts.url, name, opts.env),
        log: opts.log,
        timeoutMs: 3000,
      }),
    signingEnv: { ...process.env, ...signingEnv(opts.credentials, { role: "operator" }) },
  });
  for (const port of [DEFAULT_DASHBOARD_PORT, 0]) {
    try {
      return { dashboard: await runDashboard(wiring(port)), token };
    } catch (err) {
      opts.log.warn({ err: errorMessage(err), port }, "dashboard not started on this port");
    }
  }
  return null;
}

/** `swarm watch`'s filters, from the query of /api/events and /api/stream. */
const watchFilters: LogFilterFactory = (q) => {
  const missionId = q.mission === undefined ? undefined : checkMissionId(q.mission);
  const agent = q.agent === undefined ? undefined : checkAgentName(q.agent);
  const types = q.type === undefined ? undefined : parseTypeList(q.type);
  return createWatchFilter({
    ...(missionId ? { missionId } : {}),
    ...(agent ? { agent } : {}),
    ...(types ? { types } : {}),
  });
};

/**
 * The actions of `swarm approve`, `deny` and `cancel`, each on its own
 * connection with the operator's credentials and signature, as the commands
 * make them (the audit then shows the operator as who decided).
 */
function cliActions(wiring: DashboardWiring, state: () => DashboardState | null): DashboardActions {
  const withOperator = async <T>(name: string, f: (nc: NatsConnection) => Promise<T>) => {
    const nc = await wiring.connect("operator", name);
    try {
      return await f(nc);
    } finally {
      await nc.drain().catch(() => nc.close());
    }
  };
  return {
    decide: (approvalId, decision, reason) =>
      withOperator(
        `swarm-dashboard-${decision === "approved" ? "approve" : "deny"}`,
        async (nc) => {
          const guard = await openCliGuard(nc, {
            publishes: true,
            ...(wiring.signingEnv ? { env: wiring.signingEnv } : {}),
          });
          const out = await decideApproval(nc, approvalId, decision, guard, decisionReason(reason));
          return { approval_id: approvalId, decision, ...out };
        },
      ),
    cancel: async (missionArg, reason) => {
      const missionId = checkMissionId(missionArg);
      const known = state()?.view.mission(missionId, new Date());
      if (!known)
        throw new BadInputError(`no mission ${missionId} is known to this dashboard; nothing sent`);
      if (["completed", "failed", "cancelled"].includes(known.status))
        throw new BadInputError(
          `mission ${missionId} has already ended (${known.status}); nothing sent`,
        );
      return withOperator("swarm-dashboard-cancel", async (nc) => {
        const guard = await openCliGuard(nc, {
          publishes: true,
          ...(wiring.signingEnv ? { env: wiring.signingEnv } : {}),
        });
        const event = makeEvent(
          "mission_cancelled",
          {
            // Unique per request, as `swarm cancel` makes it.
            id: `${missionId}.cancel-request.${Date.now().toString(36)}${randomBytes(2).toString("hex")}`,
            mission_id: missionId,
            source: "cli",
          },
          { reason, requested_by: "cli" },
        );
        await createPublisher(nc, { signer: guard.signer }).publish(event);
        return { mission_id: missionId, event_id: event.id };
      });
    },
  };
}
