import { hostname } from "node:os";
import type { Publisher } from "../bus/publisher.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { makeEvent, type SquadEvent } from "../schema/index.ts";

export interface ReplicaStatusOptions {
  publisher: Publisher;
  log: Logger;
  agent: string;
  instance: string;
  heartbeatMs: number;
  /** Attempts running now (for the heartbeat). */
  inFlight: () => number;
  /** Events the replica's event guard refused since start (for the heartbeat). */
  refused?: () => number;
  /** Bytes of its checkouts and caches (worker-workspaces.ts diskBytes). */
  workspaceBytes?: () => number;
}

/** Results reported by one replica since it started. */
export interface ReplicaCounters {
  completed: number;
  failed: number;
}

/**
 * A replica's status on `squad.status.<agent>.<instance>`: agent_online,
 * a heartbeat with its counts, agent_offline. A status event that can't be
 * published is a log line: the next heartbeat says it again.
 */
export function createReplicaStatus(opts: ReplicaStatusOptions) {
  const { publisher, log, agent, instance } = opts;
  const worker = `${agent}/${instance}`;
  const startedAt = Date.now();
  const counters: ReplicaCounters = { completed: 0, failed: 0 };
  const statusFields = { mission_id: null, source: worker };
  let heartbeat: NodeJS.Timeout | undefined;

  const publishStatus = async (build: () => SquadEvent): Promise<void> => {
    try {
      await publisher.publish(build());
    } catch (err) {
      log.warn({ err: errorMessage(err) }, "status event not published");
    }
  };

  /** Counts at the last "tasks done" line: one info line per heartbeat with work, not per task. */
  const logged = { completed: 0, failed: 0 };
  const logProgress = () => {
    const completed = counters.completed - logged.completed;
    const failed = counters.failed - logged.failed;
    if (completed === 0 && failed === 0) return;
    Object.assign(logged, counters);
    log.info({ completed, failed, in_flight: opts.inFlight() }, "tasks done");
  };

  return {
    counters,
    /** agent_online, then a heartbeat every heartbeatMs. */
    async online(info: { concurrency: number; model: string; version: string }): Promise<void> {
      await publishStatus(() =>
        makeEvent("agent_online", statusFields, {
          agent,
          instance,
          pid: process.pid,
          host: hostname(),
          ...info,
        }),
      );
      heartbeat = setInterval(() => {
        logProgress();
        void publishStatus(() =>
          makeEvent("agent_heartbeat", statusFields, {
            agent,
            instance,
            in_flight: opts.inFlight(),
            completed: counters.completed,
            failed: counters.failed,
            uptime_s: Math.round((Date.now() - startedAt) / 1000),
            ...(opts.refused ? { refused_events: opts.refused() } : {}),
            ...(opts.workspaceBytes ? { workspace_bytes: opts.workspaceBytes() } : {}),
          }),
        );
      }, opts.heartbeatMs);
      heartbeat.unref();
    },
    /** No more heartbeats; the last counts logged. */
    stopHeartbeat(): void {
      clearInterval(heartbeat);
      logProgress();
    },
    offline(reason: string): Promise<void> {
      return publishStatus(() =>
        makeEvent("agent_offline", statusFields, { agent, instance, reason }),
      );
    },
  };
}

export type ReplicaStatus = ReturnType<typeof createReplicaStatus>;
