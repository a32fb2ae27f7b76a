/**
 * The one JSON line `deploy --json` prints (contract):
 * `{ mission_id, status, tasks: {total, succeeded, failed}, duration_ms,
 *    report, usage: {input_tokens, output_tokens} }`.
 * Built from the orchestrator's final event, completed by the mission's JSON
 * report where the event carries less (a cancelled mission's event has no
 * counts), and by what the launcher saw itself when neither exists.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { FinalMissionEvent } from "../../schema/index.ts";

export type DeployStatus = "completed" | "failed" | "cancelled";

export interface DeploySummary {
  mission_id: string;
  status: DeployStatus;
  tasks: { total: number; succeeded: number; failed: number };
  duration_ms: number;
  /** The Markdown report, or null when the orchestrator wrote none. */
  report: string | null;
  usage: { input_tokens: number; output_tokens: number };
  /** Why it failed or was cancelled (not in the JSON line). */
  reason: string | null;
}

const Counts = z.object({
  total: z.number().int().nonnegative(),
  succeeded: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
});
const Tokens = z.object({
  input_tokens: z.number().int().nonnegative(),
  output_tokens: z.number().int().nonnegative(),
});

/** The part of the `.json` report the summary needs (the report has much more). */
export const ReportFacts = z.object({
  mission_id: z.string(),
  status: z.string(),
  duration_ms: z.number().nonnegative(),
  tasks: Counts,
  usage: Tokens,
});
export type ReportFacts = z.infer<typeof ReportFacts>;

/** The report's facts, or null when it is missing or not the shape we know. */
export async function readReportFacts(jsonPath: string): Promise<ReportFacts | null> {
  let text: string;
  try {
    text = await readFile(jsonPath, "utf8");
  } catch {
    return null;
  }
  try {
    const r = ReportFacts.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export interface SummaryInput {
  missionId: string;
  /** null: no final event arrived (e.g. cancelled before the orchestrator answered). */
  final: FinalMissionEvent | null;
  report: ReportFacts | null;
  /** Path of the Markdown report when the file exists. */
  reportPath: string | null;
  /** The reason when no final event came (default: "no final event from the orchestrator"). */
  noFinalReason?: string;
  /** What the launcher saw: task counts from the events, time since submit. */
  observed: { tasks: DeploySummary["tasks"]; usage: DeploySummary["usage"]; durationMs: number };
}

/** Pure: the summary from what is known, best source first. */
export function buildDeploySummary(input: SummaryInput): DeploySummary {
  const { final, report, observed } = input;
  const status: DeployStatus =
    final?.type === "mission_completed"
      ? "completed"
      : final?.type === "mission_failed"
        ? "failed"
        : "cancelled";
  const p = final?.payload;
  const fromEvent =
    p && "tasks" in p && p.tasks ? { tasks: p.tasks, usage: p.usage, duration: p.duration_ms } : {};
  const reason =
    final?.type === "mission_failed" || final?.type === "mission_cancelled"
      ? final.payload.reason
      : final
        ? null
        : (input.noFinalReason ?? "no final event from the orchestrator");
  return {
    mission_id: input.missionId,
    status,
    tasks: pickCounts(fromEvent.tasks ?? report?.tasks ?? observed.tasks),
    duration_ms: Math.round(fromEvent.duration ?? report?.duration_ms ?? observed.durationMs),
    report: input.reportPath,
    usage: pickTokens(fromEvent.usage ?? report?.usage ?? observed.usage),
    reason,
  };
}

/** The contract's JSON line (exactly its fields). */
export function summaryJsonLine(s: DeploySummary): string {
  return JSON.stringify({
    mission_id: s.mission_id,
    status: s.status,
    tasks: s.tasks,
    duration_ms: s.duration_ms,
    report: s.report,
    usage: s.usage,
  });
}

function pickCounts(c: DeploySummary["tasks"]): DeploySummary["tasks"] {
  return { total: c.total, succeeded: c.succeeded, failed: c.failed };
}

function pickTokens(u: DeploySummary["usage"]): DeploySummary["usage"] {
  return { input_tokens: u.input_tokens, output_tokens: u.output_tokens };
}
