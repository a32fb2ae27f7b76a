import type { LeaseStore } from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { MissionBook } from "./mission-book.ts";
import type { MissionLauncher } from "./mission-launch.ts";
import type { MissionRunner } from "./mission-runner.ts";

export interface MissionAdoptionOptions {
  leases: LeaseStore;
  book: MissionBook;
  runners: Map<string, MissionRunner>;
  launcher: MissionLauncher;
  /** Owner name in the mission leases. */
  instance: string;
  leaseMs: number;
  log: Logger;
  isStopping: () => boolean;
}

/**
 * Mission leases (KV `squad_missions`): a mission runs under the lease of
 * one orchestrator, renewed while it runs, so two never drive one mission.
 * An unfinished mission whose lease is free (first start, or its owner
 * died) is taken over here and resumed from its events.
 */
export interface MissionAdoption {
  /** Take an unfinished mission over if its lease is free. */
  adopt(missionId: string): Promise<void>;
  /** Every resumable mission nobody here runs: try to take it over (fire and forget). */
  scan(): void;
  /** Renew the lease of every mission running here; a lost one is abandoned. */
  renewAll(): void;
}

export function createMissionAdoption(opts: MissionAdoptionOptions): MissionAdoption {
  const { leases, book, runners, instance, leaseMs, log } = opts;
  /** Missions whose lease is being asked for right now. */
  const adopting = new Set<string>();
  /** Missions seen held by another orchestrator (logged once). */
  const heldElsewhere = new Set<string>();

  async function adopt(missionId: string): Promise<void> {
    if (opts.isStopping() || runners.has(missionId) || adopting.has(missionId)) return;
    adopting.add(missionId);
    try {
      const lease = await leases.acquire(missionId, instance, leaseMs);
      if (!lease.ok) {
        if (!heldElsewhere.has(missionId)) {
          heldElsewhere.add(missionId);
          log.info(
            { mission: missionId, holder: lease.holder, done: lease.done },
            "unfinished mission owned elsewhere",
          );
        }
        return;
      }
      heldElsewhere.delete(missionId);
      // The book is read now, after the await: it holds every event up to this moment.
      if (opts.isStopping() || book.isFinished(missionId) || !book.firstPlan(missionId)) {
        await leases.release(missionId, instance);
        return;
      }
      const runner = opts.launcher.resume(missionId);
      log.info(
        { mission: missionId, events: book.events(missionId).length, status: runner.state.status },
        "resuming mission",
      );
    } catch (err) {
      log.warn({ mission: missionId, err: errorMessage(err) }, "could not take the mission over");
    } finally {
      adopting.delete(missionId);
    }
  }

  return {
    adopt,
    scan() {
      for (const id of book.resumable()) if (!runners.has(id)) void adopt(id);
    },
    renewAll() {
      for (const r of [...runners.values()]) {
        leases.renew(r.id, instance, leaseMs).then(
          (ok) => {
            if (ok || r.finished || runners.get(r.id) !== r) return;
            log.error({ mission: r.id }, "mission lease lost: another orchestrator took it over");
            r.abandon();
            runners.delete(r.id);
          },
          (err: unknown) =>
            log.warn({ mission: r.id, err: errorMessage(err) }, "lease renewal failed"),
        );
      }
    },
  };
}
