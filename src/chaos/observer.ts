/**
 * The chaos run's eyes on the bus, on its own connection: which mission was
 * submitted, how far each mission has got (SQUAD_EVENTS, followed across
 * reconnects and server restarts), every dispatch (a core subscription on
 * `squad.tasks.>`: the work queue keeps no copy), and at the end the
 * mission's whole record, read back from the stream.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  connectBus,
  followEvents,
  replayEvents,
  watchEvents,
  type EventFeed,
  type EventWatch,
  type NatsConnection,
} from "../bus/index.ts";
import { silentLogger } from "../log.ts";
import { isFinalMissionEvent, type FinalMissionEvent } from "../schema/index.ts";
import type { SquadEvent } from "../schema/index.ts";

interface MissionProgress {
  completed: Set<string>;
  /** `<task>#<attempt>` of results with a commit the merge queue has not answered yet. */
  merging: Set<string>;
  final: FinalMissionEvent | null;
  dispatches: number;
}

export interface Observer {
  nc: NatsConnection;
  /** The id of the next mission_submitted published on `squad.missions.submit`. */
  nextSubmission(timeoutMs: number): Promise<string>;
  /** Tasks of the mission with a task_completed so far. */
  completed(missionId: string): number;
  /** Resolves once `n` tasks completed or the mission ended; false on timeout. */
  waitCompleted(missionId: string, n: number, timeoutMs: number): Promise<boolean>;
  /** The orchestrator's final event, or null after `timeoutMs`. */
  waitFinal(missionId: string, timeoutMs: number): Promise<FinalMissionEvent | null>;
  /**
   * Resolves true once an attempt of the mission waits for the merge queue (a
   * succeeded result with a commit, no task_merged / task_conflicted yet);
   * false when the mission ended first or after `timeoutMs`.
   */
  waitMerging(missionId: string, timeoutMs: number): Promise<boolean>;
  /** task_assigned messages seen for the mission (re-dispatches included). */
  dispatches(missionId: string): number;
  /** The mission's events in SQUAD_EVENTS, in order. */
  events(missionId: string): Promise<SquadEvent[]>;
  close(): Promise<void>;
}

export async function startObserver(urls: string[]): Promise<Observer> {
  const nc = await connectBus({
    servers: urls,
    name: "chaos-observer",
    log: silentLogger,
    reconnectTimeWaitMs: 250,
  });
  const missions = new Map<string, MissionProgress>();
  const submissions: string[] = [];
  let wake: Array<() => void> = [];
  const poke = () => {
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  const progress = (id: string): MissionProgress => {
    let p = missions.get(id);
    if (!p) {
      missions.set(
        id,
        (p = { completed: new Set(), merging: new Set(), final: null, dispatches: 0 }),
      );
    }
    return p;
  };

  const watches: EventWatch[] = [
    watchEvents(nc, {
      subject: "squad.missions.submit",
      onEvent: (e) => {
        if (e.type === "mission_submitted" && e.mission_id) submissions.push(e.mission_id);
        poke();
      },
      onInvalid: () => undefined,
    }),
    watchEvents(nc, {
      subject: "squad.tasks.>",
      onEvent: (e) => {
        if (e.type === "task_assigned" && e.mission_id) progress(e.mission_id).dispatches++;
      },
      onInvalid: () => undefined,
    }),
  ];
  await Promise.all(watches.map((w) => w.ready));
  // SQUAD_EVENTS is created by the swarm under test, not by us: follow it once it exists.
  let feed: EventFeed | null = null;
  let closed = false;
  const following = (async () => {
    while (!closed && !feed) {
      try {
        feed = await followEvents(nc, {
          fromSeq: 1,
          onEvent: (e) => {
            if (!e.mission_id) return;
            const p = progress(e.mission_id);
            if (e.type === "task_completed" && e.task_id) {
              p.completed.add(e.task_id);
              if (e.payload.result.changes)
                p.merging.add(`${e.task_id}#${e.payload.result.attempt}`);
            }
            if ((e.type === "task_merged" || e.type === "task_conflicted") && e.task_id) {
              p.merging.delete(`${e.task_id}#${e.payload.attempt}`);
            }
            if (isFinalMissionEvent(e)) p.final ??= e;
            poke();
          },
        });
      } catch {
        await sleep(250);
      }
    }
  })();

  /** Wait until `check` answers non-undefined, or the timeout (undefined). */
  async function until<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  let seenSubmissions = 0;
  return {
    nc,
    async nextSubmission(timeoutMs) {
      const id = await until(
        () => (submissions.length > seenSubmissions ? submissions[seenSubmissions] : undefined),
        timeoutMs,
      );
      if (id === undefined) throw new Error(`no mission was submitted within ${timeoutMs} ms`);
      seenSubmissions++;
      return id;
    },
    completed: (id) => missions.get(id)?.completed.size ?? 0,
    async waitCompleted(id, n, timeoutMs) {
      const ok = await until(() => {
        const p = missions.get(id);
        return p && (p.completed.size >= n || p.final) ? true : undefined;
      }, timeoutMs);
      return ok === true;
    },
    async waitMerging(id, timeoutMs) {
      const r = await until(() => {
        const p = missions.get(id);
        if (p?.final) return false;
        return p && p.merging.size > 0 ? true : undefined;
      }, timeoutMs);
      return r === true;
    },
    async waitFinal(id, timeoutMs) {
      return (await until(() => missions.get(id)?.final ?? undefined, timeoutMs)) ?? null;
    },
    dispatches: (id) => missions.get(id)?.dispatches ?? 0,
    async events(id) {
      const out: SquadEvent[] = [];
      for await (const { event } of replayEvents(nc, { missionId: id })) out.push(event);
      return out;
    },
    async close() {
      closed = true;
      await following;
      await (feed as EventFeed | null)?.stop();
      await Promise.all(watches.map((w) => w.stop()));
      await nc.close();
    },
  };
}
