/**
 * What the dashboard knows right now, and who is told when it changes: the
 * folded view, the event log, the NATS connection's state and the agents'
 * load. The feed writes it; the HTTP server reads it and fans changes out
 * to the pages' event streams.
 */
import type { DlqRecord, MissionSummaryValue, SquadEvent } from "../schema/index.ts";
import { EventLog, type LogItem } from "./event-log.ts";
import type { AgentLoad, NatsState } from "./swarm-feed.ts";
import { createSwarmView, type SwarmView } from "./swarm-view.ts";

/** What changed, so a page refetches only the view it shows. */
export interface Change {
  /** `mission` (its id), `agents`, `approvals`. */
  kind: "mission" | "agents" | "approvals";
  mission_id: string | null;
  task_id: string | null;
}

export interface StateListener {
  nats(state: NatsState): void;
  change(change: Change): void;
  item(item: LogItem): void;
}

export interface DashboardState {
  readonly view: SwarmView;
  readonly log: EventLog;
  readonly nats: NatsState;
  readonly load: AgentLoad;
  onEvent(event: SquadEvent): void;
  onSummary(summary: MissionSummaryValue): void;
  /** Where a listed mission's events are read from when it is opened (the feed). */
  setHistoryLoader(
    loader: (missionId: string, range: { fromSeq: number; toSeq: number }) => Promise<void>,
  ): void;
  /** Resolves once the mission's events are folded (read now if it was only listed). */
  loadMission(missionId: string): Promise<void>;
  onDeadLetter(record: DlqRecord, subject: string): void;
  onNats(state: NatsState): void;
  onLoad(load: AgentLoad): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: StateListener): () => void;
}

export function createDashboardState(): DashboardState {
  const view = createSwarmView();
  const log = new EventLog();
  const listeners = new Set<StateListener>();
  let nats: NatsState = { state: "connecting", detail: "connecting to NATS" };
  let load: AgentLoad = { consumers: [], deadLetters: {} };
  let loader:
    ((missionId: string, range: { fromSeq: number; toSeq: number }) => Promise<void>) | null = null;
  /** Missions whose events are being read: later callers wait for the same read. */
  const loading = new Map<string, Promise<void>>();
  const tell = (f: (l: StateListener) => void) => {
    for (const l of listeners) f(l);
  };
  return {
    view,
    log,
    get nats() {
      return nats;
    },
    get load() {
      return load;
    },
    onEvent(event) {
      if (!view.apply(event)) return;
      const item = log.add({ kind: "event", event });
      const kind: Change["kind"] =
        event.type === "approval_requested" || event.type === "approval_resolved"
          ? "approvals"
          : event.type.startsWith("agent_")
            ? "agents"
            : "mission";
      tell((l) => {
        l.change({ kind, mission_id: event.mission_id, task_id: event.task_id });
        l.item(item);
      });
    },
    onSummary(summary) {
      view.applySummary(summary);
      tell((l) => l.change({ kind: "mission", mission_id: summary.mission_id, task_id: null }));
    },
    setHistoryLoader(f) {
      loader = f;
    },
    async loadMission(id) {
      const busy = loading.get(id);
      if (busy) return busy;
      const range = loader ? view.historyOf(id) : null;
      if (!range || !loader) return;
      const read = loader(id, range)
        .then(() => view.historyLoaded(id))
        .finally(() => loading.delete(id));
      loading.set(id, read);
      return read;
    },
    onDeadLetter(record, subject) {
      view.applyDeadLetter(record, subject);
      const item = log.add({ kind: "dead_letter", record, subject });
      tell((l) => {
        l.change({ kind: "agents", mission_id: null, task_id: null });
        l.item(item);
      });
    },
    onNats(state) {
      if (state.state === nats.state && state.detail === nats.detail) return;
      nats = state;
      tell((l) => l.nats(state));
    },
    onLoad(next) {
      const same = JSON.stringify(next) === JSON.stringify(load);
      load = next;
      if (!same) tell((l) => l.change({ kind: "agents", mission_id: null, task_id: null }));
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
