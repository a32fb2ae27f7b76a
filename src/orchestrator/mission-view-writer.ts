/**
 * The orchestrator's writer of the mission view (src/schema/mission-view.ts):
 * every admitted event of SQUAD_EVENTS, in stream order, folded into its
 * mission's summary (mission-view.ts) and written behind the event loop.
 * Events are folded in place into the writer's own copy (O(1) each; the
 * counts are settled when a value is written). Writes of one mission are
 * coalesced (one in flight, at most every `writeEveryMs`; the next carries
 * every event folded meanwhile), and are compare-and-set, so several
 * orchestrators folding the same stream converge: the value with the higher
 * `last_seq` wins. The index (active and recently finished missions, and the
 * watermark: every event up to it is in the bucket) is written when a
 * mission starts or ends, and otherwise at most every `indexEveryMs`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { MissionViewStore, Versioned } from "../bus/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  isFinishedStanding,
  type MissionSummaryValue,
  type MissionViewIndex,
  type SquadEvent,
} from "../schema/index.ts";
import {
  emptyIndex,
  emptySummary,
  foldMissionEventInPlace,
  placeInIndex,
  settleTaskCounts,
} from "./mission-view.ts";

export interface MissionViewWriter {
  /**
   * One admitted event, in stream order (the replay at start, then the live
   * feed): every one from where the replay started (mission-view-start.ts),
   * since the watermark written says that all events up to it are folded.
   */
  observe(event: SquadEvent, seq: number): void;
  /** Resolves once everything observed so far is in the bucket (index and watermark too). */
  flush(): Promise<void>;
  /** Flush, then stop the index timer. */
  stop(): Promise<void>;
}

interface Entry {
  /** The fold so far; `revision`: the key's revision as last read or written (0: not there). */
  value: MissionSummaryValue;
  revision: number;
  /** Lowest sequence folded in but not yet written, or null when the bucket has it all. */
  unwrittenFrom: number | null;
  /** Lowest sequence of the write in flight. */
  writingFrom: number | null;
  writing: Promise<void> | null;
}

/** Compare-and-set rounds before a write is given up (each round means another writer won). */
const MAX_ROUNDS = 20;
/** Tries of a read or write that fails (NATS away) before the event is left out of the view. */
const IO_TRIES = 5;

export function createMissionViewWriter(opts: {
  store: MissionViewStore;
  log: Logger;
  /**
   * The bucket was empty when the orchestrator started (a first start, or the view rebuilt):
   * a mission not seen yet is not looked up before its first write (compare-and-set still guards).
   */
  fresh?: boolean;
  /** Index written at least this often while events arrive. Default 1000 ms. */
  indexEveryMs?: number;
  /** A mission's summary written at most this often while its events arrive (its end at once). Default 200 ms. */
  writeEveryMs?: number;
  now?: () => Date;
}): MissionViewWriter {
  const { store, log } = opts;
  const writeEveryMs = opts.writeEveryMs ?? 200;
  const now = () => (opts.now?.() ?? new Date()).toISOString();
  const entries = new Map<string, Entry>();
  /** Summaries whose place in the index (active, finished) is not written yet. */
  const toPlace = new Map<string, MissionSummaryValue>();
  /** Finished missions dropped from `entries` once written. */
  const released = new Set<string>();
  let observed = 0;
  /** An event that could not be folded: the watermark stays below it (a later start re-reads it). */
  let lostAt: number | null = null;
  let index: Versioned<MissionViewIndex> | null | undefined;
  let chain: Promise<void> = Promise.resolve();
  let indexWrite: Promise<void> | null = null;
  let indexAgain = false;

  const watermark = (): number => {
    let w = lostAt === null ? observed : Math.min(observed, lostAt - 1);
    for (const e of entries.values())
      for (const from of [e.unwrittenFrom, e.writingFrom])
        if (from !== null) w = Math.min(w, from - 1);
    // An unfinished mission not yet in the index: a start must still read it from its first event.
    for (const p of toPlace.values())
      if (placeOf(p) === "active") w = Math.min(w, Math.max(0, p.first_seq - 1));
    return w;
  };

  async function withRetries<T>(what: string, f: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await f();
      } catch (err) {
        if (i >= IO_TRIES) throw err;
        log.debug({ what, err: errorMessage(err), try: i }, "mission view I/O failed; retrying");
        await sleep(200 * i);
      }
    }
  }

  async function fold(event: SquadEvent, seq: number): Promise<void> {
    const id = event.mission_id;
    if (!id) return;
    let entry = entries.get(id);
    // Fresh: nothing to read, except a mission this writer wrote and let go (finished).
    if (!entry && (!opts.fresh || released.has(id))) {
      const stored = await withRetries("read", () => store.mission(id));
      entry = stored
        ? {
            value: stored.value,
            revision: stored.revision,
            unwrittenFrom: null,
            writingFrom: null,
            writing: null,
          }
        : undefined;
    }
    // The entry's value is this writer's own (read from the bucket or made here): folded in place.
    const value = entry?.value ?? emptySummary(id, event, seq);
    const before = entry ? placeOf(value) : "none";
    if (!foldMissionEventInPlace(value, event, seq)) return;
    if (!entry)
      entry = { value, revision: 0, unwrittenFrom: null, writingFrom: null, writing: null };
    entry.unwrittenFrom ??= seq;
    entries.set(id, entry);
    // A copy of what decides the place: the value itself goes on changing.
    if (placeOf(value) !== before) toPlace.set(id, { ...value });
    write(id, entry);
  }

  function write(id: string, entry: Entry): void {
    if (entry.writing) return;
    entry.writing = (async () => {
      while (entry.unwrittenFrom !== null) {
        const value = entry.value;
        const from = entry.unwrittenFrom;
        entry.writingFrom = from;
        entry.unwrittenFrom = null;
        try {
          await withRetries("write", () => writeMission(entry, value));
        } catch (err) {
          lostAt = Math.min(lostAt ?? Infinity, from);
          log.error({ mission: id, err: errorMessage(err) }, "mission view not written");
        }
        entry.writingFrom = null;
        // Coalesce: a busy mission is written a few times a second, not once per event (a write
        // serializes its every task); its end goes out at once.
        if (entry.unwrittenFrom !== null && !isFinishedStanding(entry.value.state))
          await sleep(writeEveryMs);
      }
      entry.writing = null;
      // Finished and written: the bucket holds it; a straggler event reads it back.
      if (isFinishedStanding(entry.value.state) && entries.get(id) === entry) {
        entries.delete(id);
        if (opts.fresh) released.add(id);
      }
      if (toPlace.size) scheduleIndex();
    })();
  }

  /** Compare-and-set until ours is written or the bucket holds a fold at least as far. */
  async function writeMission(entry: Entry, value: MissionSummaryValue): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      settleTaskCounts(value);
      const written = await store.putMission(value, entry.revision);
      if (written !== null) {
        entry.revision = written;
        return;
      }
      const stored = await store.mission(value.mission_id);
      entry.revision = stored?.revision ?? 0;
      if (stored && stored.value.last_seq >= value.last_seq) {
        // Another orchestrator wrote as far or further: that is the fold from now on.
        if (entry.value === value) entry.value = stored.value;
        return;
      }
    }
    throw new Error(`no write after ${MAX_ROUNDS} compare-and-set rounds`);
  }

  function scheduleIndex(): void {
    if (indexWrite) {
      indexAgain = true;
      return;
    }
    indexWrite = (async () => {
      do {
        indexAgain = false;
        try {
          await withRetries("index", writeIndex);
        } catch (err) {
          log.error({ err: errorMessage(err) }, "mission view index not written");
        }
      } while (indexAgain);
      indexWrite = null;
    })();
  }

  async function writeIndex(): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (index === undefined) index = await store.index();
      // The index never names a key that is not there: an unfinished mission once its key is
      // written (a busy one is never quiet), a finished one once its last fold is.
      const placed = [...toPlace.values()].filter((s) => {
        const e = entries.get(s.mission_id);
        if (!e) return true;
        return placeOf(s) === "finished"
          ? e.unwrittenFrom === null && e.writingFrom === null
          : e.revision > 0;
      });
      const prev = index?.value ?? emptyIndex(now());
      const next = placeInIndex(prev, placed, watermark(), now());
      if (next === prev && index) {
        for (const s of placed) toPlace.delete(s.mission_id);
        return;
      }
      const written = await store.putIndex(next, index?.revision ?? 0);
      if (written !== null) {
        index = { value: next, revision: written };
        for (const s of placed) if (toPlace.get(s.mission_id) === s) toPlace.delete(s.mission_id);
        return;
      }
      index = undefined; // another writer was first: read theirs, place ours again
    }
    throw new Error(`no index write after ${MAX_ROUNDS} compare-and-set rounds`);
  }

  const timer = setInterval(() => {
    if (!indexWrite && index?.value.watermark !== watermark()) scheduleIndex();
  }, opts.indexEveryMs ?? 1000);
  timer.unref();

  async function flush(): Promise<void> {
    await chain;
    await Promise.all([...entries.values()].map((e) => e.writing));
    scheduleIndex();
    while (indexWrite) await indexWrite;
  }

  return {
    observe(event, seq) {
      chain = chain
        .then(async () => {
          await fold(event, seq);
          // After the fold: the watermark may pass this event only once its mission is marked unwritten.
          observed = Math.max(observed, seq);
        })
        .catch((err: unknown) => {
          lostAt = Math.min(lostAt ?? Infinity, seq);
          log.error({ seq, err: errorMessage(err) }, "event not folded into the mission view");
        });
    },
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}

function placeOf(s: MissionSummaryValue): "none" | "active" | "finished" {
  return isFinishedStanding(s.state) ? "finished" : s.state === "submitted" ? "none" : "active";
}
