/**
 * `swarm status` (pure): a bus snapshot → the report (`--json` prints it as
 * is) → compact text tables.
 */
import { styleText } from "node:util";
import type { SwarmSnapshot } from "../bus/index.ts";
import { isStatusEvent } from "../schema/index.ts";
import {
  listMissions,
  summarizeMissions,
  type MissionStanding,
  type MissionOverview,
} from "./mission-summary.ts";
import { oneLine, renderTable } from "./text-table.ts";
import { bytesText } from "../text.ts";

/** The worker replica's default heartbeat interval (startWorkerReplica `heartbeatMs`). */
export const DEFAULT_HEARTBEAT_INTERVAL_S = 5;
/** A replica whose last heartbeat is older than this many intervals is "stale". */
export const STALE_AFTER_INTERVALS = 3;

export type InstanceState = "online" | "stale" | "offline";

export interface InstanceStatus {
  agent: string;
  instance: string;
  state: InstanceState;
  /** agent_online, agent_heartbeat or agent_offline. */
  last_event: string;
  last_seen: string;
  age_s: number;
  in_flight: number | null;
  completed: number | null;
  failed: number | null;
  uptime_s: number | null;
  /** Events the replica refused since start (its last heartbeat; forged, unsigned, wrong role). */
  refused_events: number | null;
  /** Bytes of its task checkouts and mission caches (its last heartbeat). */
  workspace_bytes: number | null;
  /** Why it went offline. */
  reason: string | null;
}

export interface AgentStatus {
  agent: string;
  online: number;
  stale: number;
  offline: number;
  /** Tasks waiting for a replica (num_pending of `worker-<agent>`; without the consumer: queued messages). */
  backlog: number;
  /** Delivered, not yet acked (num_ack_pending). */
  in_flight: number;
  /** Idle pull requests of its replicas. */
  waiting: number;
  redelivered: number;
  /** Records in SQUAD_DLQ for this agent. */
  dlq: number;
  /** Whether the durable `worker-<agent>` exists. */
  consumer: boolean;
}

export interface ConsumerStatus {
  name: string;
  agent: string;
  num_pending: number;
  num_ack_pending: number;
  num_waiting: number;
  num_redelivered: number;
}

export interface StatusReport {
  generated_at: string;
  nats: string;
  heartbeat_interval_s: number;
  agents: AgentStatus[];
  instances: InstanceStatus[];
  consumers: ConsumerStatus[];
  /** Active missions, then the most recently finished ones; queued submissions too. */
  missions: MissionOverview[];
  /** Where the missions were read: the mission view (bounded), or every event (`--from-events`). */
  mission_view: MissionViewStatus;
  /** Messages on the squad streams that were not valid events. */
  invalid_messages: number;
}

export interface MissionViewStatus {
  source: "view" | "events";
  /** ok; missing: no orchestrator of this version built it; unusable: another version's or unreadable. */
  state: "ok" | "missing" | "unusable";
  detail: string | null;
  /** Finished missions the view holds beyond those listed. */
  finished_not_listed: number;
  /** Every event of SQUAD_EVENTS up to this sequence is in the view. */
  watermark: number | null;
}

export interface BuildStatusOptions {
  nats: string;
  /** Agents listed even without any trace on the bus (the roster's). */
  knownAgents?: readonly string[];
  heartbeatIntervalS?: number;
}

export function buildStatusReport(snap: SwarmSnapshot, opts: BuildStatusOptions): StatusReport {
  const now = Date.parse(snap.takenAt);
  const interval = opts.heartbeatIntervalS ?? DEFAULT_HEARTBEAT_INTERVAL_S;
  const staleMs = interval * STALE_AFTER_INTERVALS * 1000;

  const instances: InstanceStatus[] = [];
  for (const e of snap.statusEvents) {
    if (!isStatusEvent(e)) continue;
    const ageMs = Math.max(0, now - Date.parse(e.timestamp));
    const hb = e.type === "agent_heartbeat" ? e.payload : null;
    instances.push({
      agent: e.payload.agent,
      instance: e.payload.instance,
      state: e.type === "agent_offline" ? "offline" : ageMs > staleMs ? "stale" : "online",
      last_event: e.type,
      last_seen: e.timestamp,
      age_s: Math.round(ageMs / 1000),
      in_flight: hb?.in_flight ?? (e.type === "agent_online" ? 0 : null),
      completed: hb?.completed ?? null,
      failed: hb?.failed ?? null,
      uptime_s: hb?.uptime_s ?? null,
      refused_events: hb?.refused_events ?? null,
      workspace_bytes: hb?.workspace_bytes ?? null,
      reason: e.type === "agent_offline" ? e.payload.reason : null,
    });
  }
  const stateRank: Record<InstanceState, number> = { online: 0, stale: 1, offline: 2 };
  instances.sort(
    (a, b) =>
      a.agent.localeCompare(b.agent) ||
      stateRank[a.state] - stateRank[b.state] ||
      b.last_seen.localeCompare(a.last_seen),
  );

  const consumers: ConsumerStatus[] = snap.consumers.map((c) => ({
    name: c.name,
    agent: c.agent,
    num_pending: c.pending,
    num_ack_pending: c.ackPending,
    num_waiting: c.waiting,
    num_redelivered: c.redelivered,
  }));

  const names = new Set<string>([
    ...(opts.knownAgents ?? []),
    ...instances.map((i) => i.agent),
    ...consumers.map((c) => c.agent),
    ...Object.keys(snap.queuedTasks),
    ...Object.keys(snap.deadLetters),
  ]);
  const agents: AgentStatus[] = [...names].sort().map((agent) => {
    const mine = instances.filter((i) => i.agent === agent);
    const c = consumers.find((x) => x.agent === agent);
    return {
      agent,
      online: mine.filter((i) => i.state === "online").length,
      stale: mine.filter((i) => i.state === "stale").length,
      offline: mine.filter((i) => i.state === "offline").length,
      backlog: c ? c.num_pending : (snap.queuedTasks[agent] ?? 0),
      in_flight: c?.num_ack_pending ?? 0,
      waiting: c?.num_waiting ?? 0,
      redelivered: c?.num_redelivered ?? 0,
      dlq: snap.deadLetters[agent] ?? 0,
      consumer: c !== undefined,
    };
  });

  return {
    generated_at: snap.takenAt,
    nats: opts.nats,
    heartbeat_interval_s: interval,
    agents,
    instances,
    consumers,
    ...missionsOf(snap),
    invalid_messages: snap.invalidMessages,
  };
}

function missionsOf(snap: SwarmSnapshot): Pick<StatusReport, "missions" | "mission_view"> {
  const v = snap.missionView;
  if (!v)
    return {
      missions: summarizeMissions(snap.missionEvents, snap.submissions),
      mission_view: {
        source: "events",
        state: "ok",
        detail: null,
        finished_not_listed: 0,
        watermark: null,
      },
    };
  if (v.state !== "ok")
    return {
      // Never a silent replay of the history instead: the queued submissions only, and why.
      missions: listMissions([], snap.submissions),
      mission_view: {
        source: "view",
        state: v.state,
        detail: v.detail,
        finished_not_listed: 0,
        watermark: null,
      },
    };
  return {
    missions: listMissions(v.missions, snap.submissions),
    mission_view: {
      source: "view",
      state: "ok",
      detail: null,
      finished_not_listed: v.finishedNotRead,
      watermark: v.index.watermark,
    },
  };
}

export interface FormatStatusOptions {
  color: boolean;
  /** Missions listed at most (most recently active first). Default: all in the report. */
  maxMissions?: number;
  /** Offline instances listed per agent. Default 0: counted in the agent table only. */
  maxOffline?: number;
}

const STATE_COLOR: Record<MissionStanding | InstanceState, Parameters<typeof styleText>[0]> = {
  submitted: "cyan",
  planned: "cyan",
  running: "blue",
  completed: "green",
  failed: "red",
  cancelled: "yellow",
  online: "green",
  stale: "yellow",
  offline: "gray",
};

/** The human view: agents, live instances, missions. */
export function formatStatusReport(r: StatusReport, opts: FormatStatusOptions): string {
  const paint = (s: string, c: Parameters<typeof styleText>[0]) =>
    opts.color ? styleText(c, s, { validateStream: false }) : s;
  const title = (s: string) => (opts.color ? styleText("bold", s, { validateStream: false }) : s);
  const now = Date.parse(r.generated_at);
  const out: string[] = [];

  out.push(title(`Agents`) + `  (NATS ${r.nats})`);
  if (r.agents.length === 0) out.push("  no agents: no worker has run on this server yet");
  else {
    out.push(
      renderTable(
        ["AGENT", "ONLINE", "STALE", "OFFLINE", "BACKLOG", "IN FLIGHT", "DLQ"],
        r.agents.map((a) => [
          a.agent,
          a.online ? paint(String(a.online), "green") : "0",
          a.stale ? paint(String(a.stale), "yellow") : "0",
          String(a.offline),
          a.consumer || a.backlog === 0 ? String(a.backlog) : `${a.backlog}*`,
          String(a.in_flight),
          a.dlq ? paint(String(a.dlq), "red") : "0",
        ]),
        { indent: 2, align: ["left", "right", "right", "right", "right", "right", "right"] },
      ),
    );
    if (r.agents.some((a) => !a.consumer && a.backlog > 0))
      out.push("  * no worker-<agent> consumer yet: tasks queued in SQUAD_TASKS");
  }

  const maxOffline = opts.maxOffline ?? 0;
  const offlineShown = new Map<string, number>();
  const shownInstances = r.instances.filter((i) => {
    if (i.state !== "offline") return true;
    const n = offlineShown.get(i.agent) ?? 0;
    offlineShown.set(i.agent, n + 1);
    return n < maxOffline;
  });
  out.push(
    "",
    title("Replicas") +
      `  (stale: no heartbeat for ${r.heartbeat_interval_s * STALE_AFTER_INTERVALS}s)`,
  );
  if (shownInstances.length === 0) out.push("  none online");
  else {
    // A column for refused events only when a replica refused any: forged traffic is news.
    const refused = shownInstances.some((i) => (i.refused_events ?? 0) > 0);
    out.push(
      renderTable(
        [
          "AGENT/INSTANCE",
          "STATE",
          "LAST SEEN",
          "IN FLIGHT",
          "DONE",
          "FAILED",
          "UP",
          "DISK",
          ...(refused ? ["REFUSED"] : []),
        ],
        shownInstances.map((i) => [
          `${i.agent}/${i.instance}`,
          paint(i.state, STATE_COLOR[i.state]),
          `${age(now - Date.parse(i.last_seen))} ago`,
          num(i.in_flight),
          num(i.completed),
          num(i.failed),
          i.uptime_s === null ? "-" : age(i.uptime_s * 1000),
          i.workspace_bytes === null ? "-" : bytesText(i.workspace_bytes),
          ...(refused
            ? [i.refused_events ? paint(String(i.refused_events), "red") : num(i.refused_events)]
            : []),
        ]),
        {
          indent: 2,
          align: [
            "left",
            "left",
            "right",
            "right",
            "right",
            "right",
            "right",
            "right",
            ...(refused ? (["right"] as const) : []),
          ],
        },
      ),
    );
  }

  const max = opts.maxMissions ?? Infinity;
  const mv = r.mission_view;
  out.push("", title("Missions") + (mv.source === "events" ? "  (read from SQUAD_EVENTS)" : ""));
  if (mv.state !== "ok")
    out.push(
      paint(`  mission view ${mv.state}: ${mv.detail ?? ""}`, "yellow"),
      paint(
        "  only queued submissions are listed; `swarm status --from-events` reads SQUAD_EVENTS instead (slow on a long history)",
        "yellow",
      ),
    );
  if (r.missions.length === 0) out.push(mv.state === "ok" ? "  none recorded" : "  none queued");
  else {
    out.push(
      renderTable(
        ["MISSION", "STATE", "TASKS ok/failed/total", "LAST EVENT", "TITLE"],
        r.missions
          .slice(0, max)
          .map((m) => [
            m.mission_id,
            paint(m.state + (m.cancel_requested ? " (cancelling)" : ""), STATE_COLOR[m.state]),
            m.state === "submitted"
              ? "-"
              : `${m.tasks.succeeded}/${m.tasks.failed}/${m.tasks.total}` +
                (m.tasks.running ? ` (${m.tasks.running} running)` : ""),
            `${age(now - Date.parse(m.last_event_at))} ago`,
            oneLine(m.title ?? "", 50),
          ]),
        { indent: 2 },
      ),
    );
    const more = Math.max(0, r.missions.length - max) + mv.finished_not_listed;
    if (more)
      out.push(`  … ${more} older finished missions not listed (swarm status --missions N)`);
  }
  if (r.invalid_messages)
    out.push("", paint(`${r.invalid_messages} invalid messages skipped`, "yellow"));
  return out.join("\n") + "\n";
}

function num(n: number | null): string {
  return n === null ? "-" : String(n);
}

/** 42s, 5m, 3h, 2d. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
