/**
 * The launcher's one admin step: before any child starts, create the streams,
 * the `worker-<agent>` consumers and the claims bucket as the orchestrator's
 * identity (a worker may not create them, and would otherwise race the
 * orchestrator's start). On a server the user runs with a credential that may
 * not do this, the orchestrator does it when it starts.
 */
import { connectBus } from "../../bus/connect.ts";
import { isPermissionError } from "../../bus/permission-error.ts";
import { provisionSwarm } from "../../bus/swarm-provision.ts";
import type { SwarmEnv } from "../../config.ts";
import { errorMessage } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { readWorkerTuning } from "../worker-tuning.ts";
import type { NatsEndpoint } from "./local-nats.ts";
import { launcherConnectOptions } from "./swarm-credentials.ts";

export async function provisionAsAdmin(
  endpoint: Pick<NatsEndpoint, "url" | "credentials">,
  agents: readonly string[],
  env: SwarmEnv,
  log: Logger,
): Promise<void> {
  const tuning = readWorkerTuning();
  const nc = await connectBus({
    ...launcherConnectOptions(
      endpoint.credentials,
      { role: "orchestrator" },
      endpoint.url,
      "swarm-launcher-admin",
      env,
    ),
    log,
  });
  try {
    await provisionSwarm(nc, {
      agents,
      consumer: {
        ...(tuning.SWARM_ACK_WAIT_MS ? { ackWaitMs: tuning.SWARM_ACK_WAIT_MS } : {}),
        ...(tuning.SWARM_MAX_DELIVER ? { maxDeliver: tuning.SWARM_MAX_DELIVER } : {}),
      },
      log,
    });
  } catch (err) {
    if (endpoint.credentials.kind === "identities" || !isPermissionError(err)) throw err;
    log.warn(
      { err: errorMessage(err) },
      "the given NATS credential may not provision the swarm; the orchestrator will",
    );
  } finally {
    await nc.close();
  }
}
