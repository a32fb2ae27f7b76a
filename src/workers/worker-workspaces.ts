/**
 * A replica's git workspaces: the missions' cache repositories under
 * `<SWARM_WORKSPACE>/.squad/repos` (out of every sandbox's sight: the
 * sandbox puts a tmpfs over SWARM_WORKSPACE and binds one checkout) and one
 * checkout directory per slot in use, `<SWARM_WORKSPACE>/<mission>/<instance>-<n>`,
 * reused from attempt to attempt of the mission and removed when it ends.
 * What a slot's last attempt proved about its directory (KnownCheckout) is
 * kept here for its next one: a no-op task on an unchanged base then starts
 * and ends without a git process. SWARM_CHECKOUT_REUSE=0 turns that off
 * (every attempt resets its checkout in full).
 * The bundle store is opened on the first attempt that needs it (a replica
 * that only runs tasks without a base never touches it).
 */
import { mkdir, readdir, rm, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import type { NatsConnection } from "../bus/connect.ts";
import type { Logger } from "../log.ts";
import type { CommitId } from "../schema/identifiers.ts";
import {
  prepareCheckout,
  type Checkout,
  type KnownCheckout,
} from "../workspace/attempt-checkout.ts";
import {
  bundleLimitsFromEnv,
  openBundleStore,
  type BundleStore,
} from "../workspace/bundle-store.ts";
import { MissionRepo } from "../workspace/mission-repo.ts";
import { workspaceUsage } from "../tools/workspace-usage.ts";

export interface WorkerWorkspaces {
  /** A checkout of `base` in a free slot of the mission's; its release() frees the slot. */
  acquire(mission: string, base: CommitId): Promise<Checkout>;
  /** The mission ended: its checkouts and cache go once no attempt holds one. */
  endMission(mission: string): void;
  /** Resolves when removals started so far are done. */
  settled(): Promise<void>;
  /**
   * Bytes on disk of this replica's checkouts and its missions' cache
   * repositories, as last measured (measured again, in the background, at
   * most every DISK_MEASURE_MS): what `swarm status` shows per replica.
   */
  diskBytes(): number;
}

/** How often diskBytes walks the checkouts again. */
const DISK_MEASURE_MS = 30_000;

interface MissionSlots {
  free: number[];
  /** Per slot, what its last committed attempt proved (consumed by the next acquire). */
  known: Map<number, KnownCheckout>;
  next: number;
  active: number;
  ended: boolean;
  repo: MissionRepo | null;
}

/** Missions remembered as ended (bounded like EndedMissions). */
const ENDED_KEPT = 1000;
/** A checkout's directory name: `<instance>-<slot>`. */
const CHECKOUT_NAME = /^[A-Za-z0-9_.-]+-\d+$/;

export function workerCacheRoot(workspaceRoot: string): string {
  return path.join(path.resolve(workspaceRoot), ".squad", "repos");
}

export function createWorkerWorkspaces(opts: {
  nc: NatsConnection;
  root: string;
  instance: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
}): WorkerWorkspaces {
  const root = path.resolve(opts.root);
  const reuse = opts.env.SWARM_CHECKOUT_REUSE !== "0";
  const cacheRoot = workerCacheRoot(root);
  const missions = new Map<string, MissionSlots>();
  const ended = new Set<string>();
  let store: Promise<BundleStore> | null = null;
  let removals: Promise<unknown> = Promise.resolve();

  const openStore = (): Promise<BundleStore> => {
    store ??= (async () => {
      // Not even the sandbox user (when a task runs without bwrap) may read the caches;
      // the root itself keeps the mode the sandbox set up gave it.
      await mkdir(root, { recursive: true });
      await mkdir(path.dirname(cacheRoot), { recursive: true, mode: 0o700 });
      return openBundleStore(opts.nc, bundleLimitsFromEnv(opts.env), { provision: false });
    })();
    store.catch(() => (store = null));
    return store;
  };

  const remove = async (mission: string, slots: MissionSlots | undefined): Promise<void> => {
    const missionDir = path.join(root, mission);
    const gitDir = path.join(cacheRoot, `${mission}.git`);
    // A mission without a cache here ran in the shared directory (no base): that is its output.
    if (!slots && !(await stat(gitDir).catch(() => null))) return;
    const names = await readdir(missionDir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => CHECKOUT_NAME.test(n))
        .map((n) => rm(path.join(missionDir, n), { recursive: true, force: true })),
    );
    await rmdir(missionDir).catch(() => undefined);
    if (slots?.repo) await slots.repo.remove();
    else await rm(gitDir, { recursive: true, force: true });
  };

  const scheduleRemoval = (mission: string) => {
    const slots = missions.get(mission);
    missions.delete(mission);
    removals = removals
      .then(() => remove(mission, slots))
      .catch((err: unknown) =>
        opts.log.warn({ mission, err: (err as Error).message }, "could not remove the checkouts"),
      );
  };

  let disk = 0;
  let measuredAt = -Infinity;
  let measuring = false;
  const measure = async (): Promise<number> => {
    let bytes = 0;
    for (const [mission, slots] of missions) {
      const dirs = Array.from({ length: slots.next }, (_, n) =>
        path.join(root, mission, `${opts.instance}-${n}`),
      );
      dirs.push(path.join(cacheRoot, `${mission}.git`));
      for (const d of dirs) bytes += (await workspaceUsage(d)).bytes;
    }
    return bytes;
  };

  return {
    diskBytes() {
      if (!measuring && Date.now() - measuredAt >= DISK_MEASURE_MS) {
        measuring = true;
        measuredAt = Date.now();
        void measure()
          .then((b) => (disk = b))
          .catch(() => undefined)
          .finally(() => (measuring = false));
      }
      return disk;
    },
    async acquire(mission, base) {
      let slots = missions.get(mission);
      if (!slots) {
        slots = { free: [], known: new Map(), next: 0, active: 0, ended: false, repo: null };
        missions.set(mission, slots);
      }
      const s = slots;
      const n = s.free.length > 0 ? s.free.shift()! : s.next++;
      s.active++;
      const free = () => {
        s.active--;
        s.free.push(n);
        s.free.sort((a, b) => a - b);
        if (s.ended && s.active === 0) scheduleRemoval(mission);
      };
      try {
        if (ended.has(mission)) throw new Error(`mission ${mission} has ended`);
        s.repo ??= await MissionRepo.open(cacheRoot, mission, await openStore());
        const slot = `${opts.instance}-${n}`;
        const known = s.known.get(n) ?? null;
        s.known.delete(n);
        const checkout = await prepareCheckout({
          repo: s.repo,
          dir: path.join(root, mission, slot),
          base,
          slot,
          known,
          reuse,
        });
        let released = false;
        return {
          ...checkout,
          async release() {
            if (released) return;
            released = true;
            await checkout.release();
            const proved = checkout.known();
            if (proved) s.known.set(n, proved);
            free();
          },
        };
      } catch (err) {
        free();
        throw err;
      }
    },
    endMission(mission) {
      ended.add(mission);
      if (ended.size > ENDED_KEPT) ended.delete(ended.values().next().value!);
      const slots = missions.get(mission);
      if (slots) slots.ended = true;
      if (!slots || slots.active === 0) scheduleRemoval(mission);
    },
    settled: () => removals.then(() => undefined),
  };
}
