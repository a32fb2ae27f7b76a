import type { Command } from "commander";
import { z } from "zod";
import { connectBus } from "../../bus/index.ts";
import { ensureWorkerConsumers } from "../../bus/swarm-provision.ts";
import { BadInputError } from "../../errors.ts";
import { createLogger } from "../../log.ts";
import { DEFAULT_MISSION_LEASE_MS, startOrchestrator } from "../../orchestrator/orchestrator.ts";
import { newInstanceId } from "../../workers/instance-id.ts";
import { loadRoster } from "../../workers/roster.ts";
import {
  clientConnectOptions,
  resolveCommon,
  withCommonOptions,
  type CommonFlags,
} from "../options.ts";
import { followNatsLink, healthListen, healthReport, startHealthServer } from "../health-server.ts";
import { onShutdownSignal } from "../signals.ts";
import { readWorkerTuning } from "../worker-tuning.ts";

/**
 * Tuning knobs of the orchestrator, from the environment (operations and
 * tests; the defaults suit a real swarm).
 */
const OrchestratorEnv = z.object({
  /** A dispatched attempt that no worker starts within this fails (default 60 s). */
  SWARM_START_TIMEOUT_S: z.coerce.number().positive().optional(),
  /** Mission lease: how soon another orchestrator takes over a crashed one's missions. */
  SWARM_MISSION_LEASE_S: z.coerce
    .number()
    .min(1)
    .default(DEFAULT_MISSION_LEASE_MS / 1000),
  /** Revised plans a mission may get after a task finally failed (default 2). */
  SWARM_MAX_REPLANS: z.coerce.number().int().min(0).optional(),
});

export function readOrchestratorEnv(env: NodeJS.ProcessEnv = process.env) {
  const r = OrchestratorEnv.safeParse(env);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new BadInputError(`invalid environment: ${what}`);
  }
  return r.data;
}

export function registerOrchestratorCommand(program: Command): void {
  withCommonOptions(
    program
      .command("orchestrator")
      .description("plan submitted missions and drive them to the end (resumes unfinished ones)"),
  )
    .addHelpText(
      "after",
      "\nEnvironment: SWARM_PLANNER_MODEL (for briefs without a plan), SWARM_START_TIMEOUT_S,\nSWARM_MISSION_LEASE_S, SWARM_MAX_REPLANS,\nSWARM_HEALTH_PORT / SWARM_HEALTH_HOST (GET /healthz: 200 while connected and not stopping).",
    )
    .action(async (flags: CommonFlags) => {
      const common = resolveCommon(flags);
      const tuning = readOrchestratorEnv();
      const roster = await loadRoster(common.rosterPath);
      const log = createLogger("orchestrator");
      const listen = healthListen(process.env);
      const nc = await connectBus({
        ...(await clientConnectOptions(common, "orchestrator", { role: "orchestrator" })),
        log,
      });
      const instance = `orchestrator-${newInstanceId()}`;
      const workerTuning = readWorkerTuning();
      const orchestrator = await startOrchestrator({
        nc,
        log,
        workspaceRoot: common.workspaceRoot,
        roster,
        instance,
        leaseMs: tuning.SWARM_MISSION_LEASE_S * 1000,
        ...(common.env.SWARM_PLANNER_MODEL ? { plannerModel: common.env.SWARM_PLANNER_MODEL } : {}),
        ...(tuning.SWARM_START_TIMEOUT_S ? { startTimeoutS: tuning.SWARM_START_TIMEOUT_S } : {}),
        ...(tuning.SWARM_MAX_REPLANS !== undefined ? { maxReplans: tuning.SWARM_MAX_REPLANS } : {}),
      });
      // Workers may not create their consumers (generated NATS permissions): the admin does,
      // for every roster agent that has none yet (SWARM_ACK_WAIT_MS, SWARM_MAX_DELIVER apply).
      await ensureWorkerConsumers(
        nc,
        roster.agents.map((a) => a.name),
        {
          ...(workerTuning.SWARM_ACK_WAIT_MS ? { ackWaitMs: workerTuning.SWARM_ACK_WAIT_MS } : {}),
          ...(workerTuning.SWARM_MAX_DELIVER ? { maxDeliver: workerTuning.SWARM_MAX_DELIVER } : {}),
        },
        { createOnly: true },
      );
      let stopping = false;
      const link = followNatsLink(nc);
      const health = listen
        ? await startHealthServer({
            ...listen,
            log,
            report: () =>
              healthReport({
                role: "orchestrator",
                instance,
                nats: link(),
                stopping,
                missions: orchestrator.active().length,
                refused_events: orchestrator.refusedEvents(),
              }),
          })
        : null;
      await new Promise<void>((resolve) =>
        onShutdownSignal(async (signal) => {
          log.info({ signal }, "stopping");
          stopping = true;
          await orchestrator.stop();
          resolve();
        }),
      );
      await health?.close();
      await nc.drain();
    });
}
