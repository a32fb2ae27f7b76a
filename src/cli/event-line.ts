import { styleText } from "node:util";
import type { DlqRecord, SquadEvent } from "../schema/index.ts";
import { oneLine } from "../text.ts";

type Color = Parameters<typeof styleText>[0];

/** The caller decides whether to colour (see color.ts); styleText must not second-guess it. */
function paint(c: Color, s: string): string {
  return styleText(c, s, { validateStream: false });
}

const TYPE_COLOR: Partial<Record<SquadEvent["type"], Color>> = {
  mission_submitted: "cyan",
  mission_planned: "cyan",
  mission_completed: "green",
  mission_failed: "red",
  mission_cancelled: "yellow",
  wave_started: "blue",
  wave_completed: "blue",
  task_assigned: "magenta",
  task_started: "white",
  task_progress: "gray",
  task_model_called: "gray",
  task_completed: "green",
  task_failed: "red",
  task_merged: "green",
  task_conflicted: "yellow",
  agent_online: "gray",
  agent_heartbeat: "gray",
  agent_offline: "gray",
  approval_requested: "yellow",
  approval_resolved: "yellow",
};

/** One human line per event: what `swarm watch` prints. */
export function describeEvent(e: SquadEvent): string {
  switch (e.type) {
    case "mission_submitted":
      return `submitted ${e.payload.source_path ?? "(brief)"} (${e.payload.brief.length} chars)`;
    case "mission_planned": {
      const tasks = e.payload.plan.waves.reduce((n, w) => n + w.tasks.length, 0);
      const rev = e.payload.revision ? ` revision ${e.payload.revision}` : "";
      return `planned${rev} "${e.payload.title}": ${e.payload.plan.waves.length} waves, ${tasks} tasks (${e.payload.planner ?? "explicit plan"})`;
    }
    case "mission_completed":
      return `completed: ${e.payload.tasks.succeeded}/${e.payload.tasks.total} tasks in ${ms(e.payload.duration_ms)}, ${tokens(e.payload.usage)}`;
    case "mission_failed":
      return `FAILED: ${e.payload.reason}`;
    case "mission_cancelled":
      // Anyone may ask (source "cli"...); the mission ends with the orchestrator's own event.
      return e.source === "orchestrator"
        ? `cancelled: ${e.payload.reason}`
        : `cancel requested by ${e.payload.requested_by ?? e.source}: ${e.payload.reason}`;
    case "wave_started":
      return `wave ${e.payload.wave} started: ${e.payload.task_ids.join(", ")}`;
    case "wave_completed":
      return `wave ${e.payload.wave} completed: ${e.payload.succeeded.length} ok, ${e.payload.failed.length} failed`;
    case "task_assigned": {
      const t = e.payload.task;
      const how = t.run ? `${t.run.length} run steps` : "model";
      return `${t.id} → ${t.agent} (attempt ${t.attempt}/${t.max_attempts}, ${how}): ${t.title}`;
    }
    case "task_started":
      return `${e.task_id} started on ${e.payload.worker} (attempt ${e.payload.attempt})`;
    case "task_progress": {
      const s = e.payload.step;
      const arg = typeof s.args.command === "string" ? s.args.command : JSON.stringify(s.args);
      const code = s.exit_code === undefined || s.exit_code === null ? "" : ` exit ${s.exit_code}`;
      return `${e.task_id} ${s.tool} ${oneLine(arg, 80)} → ${s.ok ? "ok" : "error"}${code} (${ms(s.duration_ms)})`;
    }
    case "task_model_called": {
      const p = e.payload;
      const asked = p.tool_calls.length ? `→ ${oneLine(p.tool_calls.join(", "), 80)}` : "→ text";
      const said = p.text.trim() ? `: ${oneLine(p.text, 80)}` : "";
      return `${e.task_id} model call ${p.call} ${p.model} ${p.input_tokens}/${p.output_tokens} tokens (${ms(p.duration_ms)}) ${asked}${said}`;
    }
    case "task_completed":
    case "task_failed": {
      const r = e.payload.result;
      const verdict =
        e.type === "task_completed" ? "completed" : `failed: ${oneLine(r.error ?? "", 120)}`;
      const c = r.changes;
      const changed = c
        ? `, commit ${c.commit.slice(0, 10)}: ${c.files.length} file${c.files.length === 1 ? "" : "s"} +${c.additions} -${c.deletions}`
        : "";
      return `${e.task_id} ${verdict} on ${r.worker} in ${ms(r.duration_ms)}, ${r.steps.length} steps, ${tokens(r.usage)}${changed}`;
    }
    case "task_merged": {
      const p = e.payload;
      const how = p.fast_forward ? "fast-forward" : `rebased as ${p.merged.slice(0, 10)}`;
      return `${e.task_id} merged ${p.commit.slice(0, 10)} (attempt ${p.attempt}, ${how}): head ${p.head.slice(0, 10)}`;
    }
    case "task_conflicted": {
      const p = e.payload;
      const files = p.files.length ? ` in ${p.files.join(", ")}` : "";
      return `${e.task_id} CONFLICT (${p.reason}${files}) onto ${p.onto.slice(0, 10)}: ${oneLine(p.error, 120)}`;
    }
    case "agent_online":
      return `${e.payload.agent}/${e.payload.instance} online (pid ${e.payload.pid}, concurrency ${e.payload.concurrency}, ${e.payload.model ?? "no model"})`;
    case "agent_heartbeat":
      return `${e.payload.agent}/${e.payload.instance} heartbeat: ${e.payload.in_flight} in flight, ${e.payload.completed} done, ${e.payload.failed} failed`;
    case "agent_offline":
      return `${e.payload.agent}/${e.payload.instance} offline: ${e.payload.reason}`;
    case "approval_requested":
      return `approval ${e.payload.approval_id} requested by ${e.payload.worker}: ${e.payload.command} (${e.payload.reason})`;
    case "approval_resolved":
      return `approval ${e.payload.approval_id} ${e.payload.decision} by ${e.payload.by}`;
  }
}

/** `HH:MM:SS.mmm mission type description`, coloured when `color`. */
export function formatEventLine(e: SquadEvent, color: boolean): string {
  const time = e.timestamp.slice(11, 23);
  const mission = e.mission_id ?? "-";
  const type = e.type.padEnd(18);
  const text = describeEvent(e);
  if (!color) return `${time} ${mission} ${type} ${text}`;
  const c = TYPE_COLOR[e.type] ?? "white";
  return `${paint("dim", time)} ${paint("bold", mission)} ${paint(c, type)} ${text}`;
}

/**
 * A dead-letter record (`squad.dlq.<agent>`): not an event, so a line of its
 * own that says which message was refused and why.
 */
export function formatDeadLetterLine(r: DlqRecord, color: boolean): string {
  const time = r.received_at.slice(11, 23);
  const label = "DEAD LETTER".padEnd(18);
  const what = r.data_base64 !== undefined ? "(binary data)" : oneLine(r.data, 100);
  const text = `${r.agent}: ${r.subject} seq ${r.stream_seq}, delivery ${r.delivery_count}: ${oneLine(r.reason, 160)} | ${what}`;
  if (!color) return `${time} - ${label} ${text}`;
  return `${paint("dim", time)} - ${paint(["red", "bold"], label)} ${text}`;
}

/** A message on squad.> that is not a valid event (for stderr). */
export function formatInvalidLine(subject: string, err: Error, data: Uint8Array): string {
  const text = new TextDecoder().decode(data.subarray(0, 400));
  return `warning: invalid message on ${subject}: ${oneLine(err.message, 300)} | ${oneLine(text, 120)}`;
}

export function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)}ms` : `${(n / 1000).toFixed(1)}s`;
}

function tokens(u: { input_tokens: number; output_tokens: number }): string {
  return `${u.input_tokens + u.output_tokens} tokens`;
}
