import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { TaskResult } from "../schema/index.ts";
import type { MissionSummary } from "./mission-state.ts";
import type { NormalizedPlan } from "./plan-validation.ts";
import { oneLine } from "../text.ts";

export interface MissionReportInput {
  title: string;
  sourcePath: string | null;
  planner: string | null;
  plan: NormalizedPlan | null;
  summary: MissionSummary;
  /** Last result of each task (the one that decided it). */
  results: Record<string, TaskResult>;
  workspace: string;
  generatedAt: string;
}

/** The `.json` report: everything in the Markdown one, machine-readable. */
export function reportJson(r: MissionReportInput): Record<string, unknown> {
  return {
    mission_id: r.summary.mission_id,
    title: r.title,
    status: r.summary.status,
    reason: r.summary.reason,
    source_path: r.sourcePath,
    planner: r.planner,
    workspace: r.workspace,
    generated_at: r.generatedAt,
    duration_ms: r.summary.duration_ms,
    tasks: r.summary.tasks,
    usage: r.summary.usage,
    revision: r.summary.revision,
    replans: r.summary.replan_history,
    failed_tasks: r.summary.failed_tasks,
    plan: r.plan,
    task_results: r.summary.rows.map((row) => ({ ...row, result: r.results[row.id] ?? null })),
  };
}

export function reportMarkdown(r: MissionReportInput): string {
  const s = r.summary;
  const lines: string[] = [
    `# Mission report: ${r.title}`,
    "",
    `| | |`,
    `|---|---|`,
    `| Mission | \`${s.mission_id}\` |`,
    `| Status | **${s.status}**${s.reason ? `: ${escapeCell(s.reason)}` : ""} |`,
    `| Brief | ${r.sourcePath ?? "(submitted text)"} |`,
    `| Planner | ${r.planner ?? "explicit plan in the brief"} |`,
    `| Duration | ${fmtMs(s.duration_ms)} |`,
    `| Tasks | ${s.tasks.succeeded} succeeded, ${s.tasks.failed} failed, ${s.tasks.total} in all${s.tasks.skipped ? `, ${s.tasks.skipped} skipped` : ""}${s.tasks.superseded ? `, ${s.tasks.superseded} superseded` : ""} |`,
    `| Tokens | ${s.usage.input_tokens} in, ${s.usage.output_tokens} out |`,
    `| Workspace | \`${r.workspace}\` |`,
    ...(s.head ? [`| Branch head | \`${s.head}\` (\`squad/${s.mission_id}\`) |`] : []),
    "",
  ];
  if (r.plan?.strategy) lines.push("## Strategy", "", r.plan.strategy.trim(), "");
  if (s.failed_tasks.length) {
    lines.push("## What failed", "");
    for (const f of s.failed_tasks)
      lines.push(`- \`${f.id}\` after ${f.attempts} attempt(s): ${f.error}`);
    lines.push("");
  }
  if (s.replan_history.length) {
    lines.push("## Replans", "");
    for (const h of s.replan_history) {
      lines.push(
        `- revision ${h.revision}, after: ${h.failed.map((f) => `\`${f.id}\` (${f.error})`).join(", ")}`,
      );
    }
    lines.push("");
  }
  lines.push(
    "## Tasks",
    "",
    "| Wave | Task | Agent | Status | Attempts | Duration | Tokens | Worker |",
    "|---|---|---|---|---|---|---|---|",
  );
  for (const row of s.rows) {
    lines.push(
      `| ${row.wave} | \`${row.id}\` ${escapeCell(row.title)} | ${row.agent} | ${row.status} | ${row.attempts} | ${fmtMs(row.duration_ms)} | ${row.usage.input_tokens + row.usage.output_tokens} | ${row.workers.join(", ")} |`,
    );
  }
  lines.push("");
  lines.push("## Token usage", "", "| By | Input | Output |", "|---|---|---|");
  for (const [agent, u] of Object.entries(s.usage.byAgent))
    lines.push(`| agent ${agent} | ${u.input_tokens} | ${u.output_tokens} |`);
  for (const [model, u] of Object.entries(s.usage.byModel))
    lines.push(`| model ${model} | ${u.input_tokens} | ${u.output_tokens} |`);
  lines.push("");

  lines.push("## Task details", "");
  for (const row of s.rows) {
    const res = r.results[row.id];
    lines.push(`### \`${row.id}\`: ${row.title}`, "");
    lines.push(
      `Agent ${row.agent}, wave ${row.wave}, ${row.status} after ${row.attempts} attempt(s).`,
    );
    if (row.summary) lines.push("", `Summary: ${row.summary}`);
    if (row.error) lines.push("", `Error: ${row.error}`);
    const changes = res?.changes;
    if (row.commit) {
      const what = changes
        ? ` (+${changes.additions} −${changes.deletions} in ${changes.files.map((f) => `\`${f.path}\``).join(", ")})`
        : "";
      lines.push("", `Commit \`${row.commit.slice(0, 12)}\` on the mission branch${what}.`);
    } else if (changes && row.status !== "succeeded") {
      lines.push(
        "",
        `Its last attempt's commit \`${changes.commit.slice(0, 12)}\` was not merged (kept as \`refs/squad/${row.id}/${res.attempt}\`).`,
      );
    }
    if (res) {
      if (res.steps.length) {
        lines.push("", "| Step | Tool | Arguments | Exit | Duration |", "|---|---|---|---|---|");
        res.steps.forEach((st, i) => {
          const arg =
            typeof st.args.command === "string" ? st.args.command : JSON.stringify(st.args);
          lines.push(
            `| ${i + 1} | ${st.tool} | \`${escapeCell(oneLine(arg, 100))}\` | ${st.ok ? "ok" : "error"}${st.exit_code === null || st.exit_code === undefined ? "" : ` ${st.exit_code}`} | ${fmtMs(st.duration_ms)} |`,
          );
        });
      }
      if (res.verification.length) {
        lines.push("", "Verification:");
        for (const v of res.verification)
          lines.push(`- ${v.ok ? "✔" : "✘"} \`${v.command}\` (exit ${v.exit_code ?? "killed"})`);
      }
    }
    lines.push("");
  }
  lines.push(`_Generated ${r.generatedAt} by the Squad orchestrator._`, "");
  return lines.join("\n");
}

/** Writes `<dir>/<mission>.md` and `.json` atomically (write then rename). */
export async function writeReport(
  paths: { md: string; json: string },
  input: MissionReportInput,
): Promise<void> {
  await mkdir(path.dirname(paths.md), { recursive: true });
  await atomicWrite(paths.md, reportMarkdown(input));
  await atomicWrite(paths.json, JSON.stringify(reportJson(input), null, 2) + "\n");
}

async function atomicWrite(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

function fmtMs(n: number | null): string {
  if (n === null) return "-";
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`;
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
