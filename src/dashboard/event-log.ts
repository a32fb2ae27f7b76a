/**
 * The live event log: the newest events and dead letters the dashboard saw,
 * numbered in arrival order, read through the filters of `swarm watch`
 * (mission, agent, type; given by the CLI, which owns them).
 */
import type { DlqRecord, SquadEvent } from "../schema/index.ts";

export type LogItem =
  | { n: number; kind: "event"; event: SquadEvent }
  | { n: number; kind: "dead_letter"; record: DlqRecord; subject: string };

/** One reader's filter; `observe` learns which agent a task belongs to. */
export interface LogFilter {
  observe(e: SquadEvent): void;
  accepts(e: SquadEvent): boolean;
  acceptsDeadLetter(r: DlqRecord): boolean;
}

/** The query of `/api/events` and `/api/stream`: `mission`, `agent`, `type` (a,b). */
export interface LogQuery {
  mission?: string;
  agent?: string;
  type?: string;
}

/** Throws BadInputError on a bad query (the same messages as `swarm watch`'s flags). */
export type LogFilterFactory = (query: LogQuery) => LogFilter;

export class EventLog {
  private readonly items: LogItem[] = [];
  private n = 0;
  private readonly max: number;
  constructor(max = 5000) {
    this.max = max;
  }

  add(
    item:
      | { kind: "event"; event: SquadEvent }
      | { kind: "dead_letter"; record: DlqRecord; subject: string },
  ): LogItem {
    const full = { ...item, n: ++this.n } as LogItem;
    this.items.push(full);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    return full;
  }

  /** The newest `limit` items the filter accepts, oldest first. */
  read(filter: LogFilter, limit: number): LogItem[] {
    const out: LogItem[] = [];
    for (const item of this.items) {
      if (item.kind === "event") {
        filter.observe(item.event);
        if (filter.accepts(item.event)) out.push(item);
      } else if (filter.acceptsDeadLetter(item.record)) out.push(item);
    }
    return out.slice(-limit);
  }

  /** Every item, for a new reader's filter to learn from. */
  all(): readonly LogItem[] {
    return this.items;
  }
}

/** Whether a live item passes a reader's filter (learning from it first). */
export function passes(filter: LogFilter, item: LogItem): boolean {
  if (item.kind === "event") {
    filter.observe(item.event);
    return filter.accepts(item.event);
  }
  return filter.acceptsDeadLetter(item.record);
}
