import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { connectBus, createPublisher } from "../../bus/index.ts";
import { startDashboard, type Dashboard } from "../../dashboard/dashboard.ts";
import { resolveToken } from "../../dashboard/access.ts";
import type { DashboardActions } from "../../dashboard/actions.ts";
import type { LogFilterFactory } from "../../dashboard/event-log.ts";
import type { DashboardState } from "../../dashboard/dashboard-state.ts";
import { BadInputError } from "../../errors.ts";
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
import { connectCliBus, decideApproval } from "./approve.ts";

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
      const dashboard = await runDashboard(common, { host: flags.host, port, token, log });
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

/** The dashboard with the CLI's connection, actions and filters (deploy-swarm starts it too). */
export async function runDashboard(
  common: Resolved,
  opts: { host: string; port: number; token: string; log: Logger },
): Promise<Dashboard> {
  let state: DashboardState | null = null;
  const dashboard = await startDashboard({
    host: opts.host,
    port: opts.port,
    token: opts.token,
    log: opts.log,
    connect: async () =>
      connectBus({
        ...(await clientConnectOptions(common, "swarm-dashboard", { role: "watcher" })),
        log: opts.log,
        timeoutMs: 3000,
      }),
    actions: cliActions(common, () => state),
    filters: watchFilters,
  });
  state = dashboard.state;
  return dashboard;
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
function cliActions(common: Resolved, state: () => DashboardState | null): DashboardActions {
  const withOperator = async <T>(
    name: string,
    f: (nc: Awaited<ReturnType<typeof connectCliBus>>) => Promise<T>,
  ) => {
    const nc = await connectCliBus(common, name);
    try {
      return await f(nc);
    } finally {
      await nc.drain().catch(() => nc.close());
    }
  };
  return {
    decide: (approvalId, decision) =>
      withOperator(
        `swarm-dashboard-${decision === "approved" ? "approve" : "deny"}`,
        async (nc) => {
          const guard = await openCliGuard(nc, { publishes: true });
          const out = await decideApproval(nc, approvalId, decision, guard);
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
        const guard = await openCliGuard(nc, { publishes: true });
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
