/**
 * What the orchestrator opens on NATS before it takes any work: the streams
 * and the missions consumer (provisioned), the event guard (signs and checks
 * events), the publisher, the mission leases and the workers' claims, the
 * mission view, and a way to take a queued attempt back out of SQUAD_TASKS.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  CLAIMS_BUCKET,
  createPublisher,
  ensureMissionsConsumer,
  MISSIONS_BUCKET,
  openEventGuard,
  openJetStreamManager,
  openLeaseStore,
  provisionStreams,
  replicasFromEnv,
  type EventGuard,
  type LeaseStore,
  type Publisher,
} from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { STREAMS } from "../schema/index.ts";
import { openMissionView, type MissionViewStart } from "./mission-view-start.ts";

export interface OrchestratorBus {
  guard: EventGuard;
  publisher: Publisher;
  leases: LeaseStore;
  claims: LeaseStore;
  /** The mission view's writer, and where the start's replay begins (mission-view-start.ts). */
  view: MissionViewStart;
  /** Delete a dispatched attempt still waiting in SQUAD_TASKS (by stream sequence). */
  discardQueued: (seq: number) => Promise<void>;
}

export async function openOrchestratorBus(opts: {
  nc: NatsConnection;
  log: Logger;
  env: NodeJS.ProcessEnv;
  streamReplicas?: number | undefined;
  guard?: EventGuard | undefined;
}): Promise<OrchestratorBus> {
  const { nc, log, env } = opts;
  // Unset here and in the environment: existing streams and buckets keep their replicas, new ones get 1.
  const replicas = opts.streamReplicas ?? replicasFromEnv(env);
  await provisionStreams(nc, { replicas, log });
  await ensureMissionsConsumer(nc);
  const guard =
    opts.guard ??
    (await openEventGuard(nc, {
      env,
      log,
      expect: { role: "orchestrator" },
      publishRegistry: replicas !== undefined ? { replicas } : {},
    }));
  const publisher = createPublisher(nc, { log, signer: guard.signer });
  const leases = await openLeaseStore(nc, MISSIONS_BUCKET, { replicas });
  // The workers' claims too: a worker user may open the bucket but not create it (nats.conf).
  const claims = await openLeaseStore(nc, CLAIMS_BUCKET, { replicas });
  const view = await openMissionView(nc, { log, replicas });
  const jsm = await openJetStreamManager(nc, { check: false });
  return {
    guard,
    publisher,
    leases,
    claims,
    view,
    discardQueued: async (seq) => {
      try {
        await jsm.streams.deleteMessage(STREAMS.tasks, seq, false);
      } catch (err) {
        // Already taken by a worker and acked: nothing is waiting.
        log.debug({ seq, err: errorMessage(err) }, "queued attempt not discarded");
      }
    },
  };
}
