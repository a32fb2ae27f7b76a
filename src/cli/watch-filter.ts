/**
 * Which events `swarm watch` shows (pure, but it learns): by mission, by
 * agent and by type. An agent's events are its status events and the events
 * of its tasks; which agent a task belongs to is learnt from the plans
 * (mission_planned) and task_assigned it sees, else read from the worker
 * that reported.
 */
import { BadInputError } from "../errors.ts";
import {
  isTaskResultEvent,
  AGENT_NAME_PATTERN,
  EVENT_TYPES,
  ID_PATTERN,
  type DlqRecord,
  type SquadEvent,
} from "../schema/index.ts";

/** Pseudo type that selects dead-letter records in `--type`. */
export const DEAD_LETTER_TYPE = "dead_letter";

export interface WatchFilterOptions {
  missionId?: string;
  agent?: string;
  /** Event types to show (and DEAD_LETTER_TYPE); omitted: all. */
  types?: ReadonlySet<string>;
}

export interface WatchFilter {
  /** Learn from an event (call for every event, shown or not). */
  observe(e: SquadEvent): void;
  accepts(e: SquadEvent): boolean;
  acceptsDeadLetter(r: DlqRecord): boolean;
}

export function createWatchFilter(opts: WatchFilterOptions): WatchFilter {
  const taskAgent = new Map<string, string>();
  const key = (mission: string | null, task: string) => `${mission ?? ""}/${task}`;

  function agentOf(e: SquadEvent): string | null {
    switch (e.type) {
      case "task_assigned":
        return e.payload.task.agent;
      case "agent_online":
      case "agent_heartbeat":
      case "agent_offline":
      case "approval_requested":
        return e.payload.agent;
      default:
        break;
    }
    if (!e.task_id) return null;
    const known = taskAgent.get(key(e.mission_id, e.task_id));
    if (known) return known;
    const worker =
      e.type === "task_started" || e.type === "task_progress" || e.type === "task_model_called"
        ? e.payload.worker
        : isTaskResultEvent(e)
          ? e.payload.result.worker
          : e.source;
    const slash = worker.indexOf("/");
    return slash > 0 ? worker.slice(0, slash) : null;
  }

  return {
    observe(e) {
      if (e.type === "mission_planned") {
        for (const w of e.payload.plan.waves)
          for (const t of w.tasks) taskAgent.set(key(e.mission_id, t.id), t.agent);
      } else if (e.type === "task_assigned") {
        taskAgent.set(key(e.mission_id, e.payload.task.id), e.payload.task.agent);
      }
    },
    accepts(e) {
      if (opts.missionId !== undefined && e.mission_id !== opts.missionId) return false;
      if (opts.types && !opts.types.has(e.type)) return false;
      if (opts.agent !== undefined && agentOf(e) !== opts.agent) return false;
      return true;
    },
    acceptsDeadLetter(r) {
      if (opts.types && !opts.types.has(DEAD_LETTER_TYPE)) return false;
      if (opts.agent !== undefined && r.agent !== opts.agent) return false;
      if (opts.missionId !== undefined && missionOfDeadLetter(r) !== opts.missionId) return false;
      return true;
    },
  };
}

/** The mission of the refused message, when it was JSON with a mission_id. */
export function missionOfDeadLetter(r: DlqRecord): string | null {
  try {
    const v = JSON.parse(r.data) as unknown;
    const id = v && typeof v === "object" ? (v as { mission_id?: unknown }).mission_id : null;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

/** `--type a,b` → the set, or a BadInputError naming the unknown ones. */
export function parseTypeList(value: string): Set<string> {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const known = new Set<string>([...EVENT_TYPES, DEAD_LETTER_TYPE]);
  const unknown = names.filter((n) => !known.has(n));
  if (names.length === 0 || unknown.length) {
    throw new BadInputError(
      `--type: ${unknown.length ? `unknown event type ${unknown.map((u) => JSON.stringify(u)).join(", ")}` : "no type given"}; ` +
        `use a comma-separated list of ${[...EVENT_TYPES, DEAD_LETTER_TYPE].join(", ")}`,
    );
  }
  return new Set(names);
}

export function checkMissionId(id: string, flag = "mission id"): string {
  if (!ID_PATTERN.test(id)) {
    throw new BadInputError(
      `invalid ${flag} ${JSON.stringify(id)}: mission ids are 1-80 characters of A-Z, a-z, 0-9, '_' or '-'`,
    );
  }
  return id;
}

export function checkAgentName(name: string): string {
  if (!AGENT_NAME_PATTERN.test(name)) {
    throw new BadInputError(
      `invalid --agent ${JSON.stringify(name)}: agent names are 1-64 characters of a-z, 0-9, '_' or '-'`,
    );
  }
  return name;
}
