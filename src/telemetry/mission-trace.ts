/**
 * One trace per mission. Its trace id and the id of its root span are
 * derived from the mission id, so every process puts the events and work of
 * a mission in the same trace without being told (the publisher parents
 * events that have no active span on the root), and the orchestrator that
 * opens the root span, or re-opens it after a crash or a takeover, gives it
 * the ids every child already points at.
 */
import { createHash } from "node:crypto";
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
} from "@opentelemetry/api";
import { SQUAD } from "./attributes.ts";

const INVALID = {
  traceId: "00000000000000000000000000000000",
  spanId: "0000000000000000",
  traceFlags: TraceFlags.NONE,
};
import { withIds } from "./forced-ids.ts";
import { sampleRatio, tracer, tracingEnabled } from "./tracing.ts";

export interface MissionTraceIds {
  traceId: string;
  /** The id of the mission's root span. */
  spanId: string;
}

/** Ids of the missions seen lately: every event of a mission asks for them. */
const recent = new Map<string, MissionTraceIds>();
const RECENT_LIMIT = 1024;

/** The ids of a mission's trace (pure). */
export function missionTraceIds(missionId: string): MissionTraceIds {
  const known = recent.get(missionId);
  if (known) return known;
  const hex = createHash("sha256").update(`squad-mission\0${missionId}`).digest("hex");
  const ids = { traceId: hex.slice(0, 32), spanId: hex.slice(32, 48) };
  if (recent.size >= RECENT_LIMIT) recent.delete(recent.keys().next().value!);
  recent.set(missionId, ids);
  return ids;
}

/** The same decision in every process: the trace id's low 32 bits against the ratio. */
function sampled(traceId: string): boolean {
  const ratio = sampleRatio();
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return parseInt(traceId.slice(-8), 16) / 0x1_0000_0000 < ratio;
}

/**
 * A context whose parent is the mission's root span (wherever it lives):
 * spans started in it belong to the mission's trace. ROOT_CONTEXT when
 * tracing is off.
 */
export function missionContext(missionId: string): Context {
  if (!tracingEnabled()) return ROOT_CONTEXT;
  const ids = missionTraceIds(missionId);
  return trace.setSpanContext(ROOT_CONTEXT, {
    ...ids,
    traceFlags: sampled(ids.traceId) ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

export interface MissionSpanOptions {
  title?: string;
  /** When the mission began: its first event's timestamp (a re-opened span keeps it). */
  startTime?: Date | string;
}

/**
 * Opens the mission's root span (ids from the mission id). End it with
 * `endMissionSpan` on mission_completed / _failed / _cancelled. Without
 * tracing, a no-op span.
 */
export function missionSpan(missionId: string, opts: MissionSpanOptions = {}): Span {
  if (!tracingEnabled()) return trace.wrapSpanContext(INVALID);
  const ids = missionTraceIds(missionId);
  if (!sampled(ids.traceId)) return trace.wrapSpanContext(INVALID);
  return withIds(ids, () =>
    tracer().startSpan(
      `mission ${missionId}`,
      {
        root: true,
        kind: SpanKind.INTERNAL,
        ...(opts.startTime ? { startTime: new Date(opts.startTime) } : {}),
        attributes: {
          [SQUAD.missionId]: missionId,
          ...(opts.title ? { [SQUAD.missionTitle]: opts.title } : {}),
        },
      },
      ROOT_CONTEXT,
    ),
  );
}

/** Ends a mission span with its final status ("completed" is OK; failed and cancelled are errors). */
export function endMissionSpan(
  span: Span,
  status: "completed" | "failed" | "cancelled",
  reason?: string,
): void {
  span.setAttribute(SQUAD.missionStatus, status);
  if (status !== "completed") {
    span.setStatus({ code: SpanStatusCode.ERROR, ...(reason ? { message: reason } : {}) });
  }
  span.end();
}

const open = new Map<string, Span>();

/**
 * The orchestrator's mission spans: opened when it starts or resumes a
 * mission (idempotent), ended when the mission ends. A process that dies
 * with a mission open exports no root span; the one that resumes the
 * mission opens it again with the same ids and the first event's time.
 */
export function openMissionSpan(missionId: string, opts: MissionSpanOptions = {}): void {
  if (!tracingEnabled() || open.has(missionId)) return;
  open.set(missionId, missionSpan(missionId, opts));
}

export function closeMissionSpan(
  missionId: string,
  status: "completed" | "failed" | "cancelled",
  reason?: string,
): void {
  const span = open.get(missionId);
  if (!span) return;
  open.delete(missionId);
  endMissionSpan(span, status, reason);
}
