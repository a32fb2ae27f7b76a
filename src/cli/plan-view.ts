/**
 * `swarm plan` text output (pure): waves, tasks with their agent,
 * dependencies and run/verify counts, then risks and success criteria.
 */
import { styleText } from "node:util";
import type { NormalizedPlan } from "../orchestrator/plan-validation.ts";
import type { Usage } from "../schema/index.ts";
import { oneLine, renderTable } from "./text-table.ts";

export interface PlanViewInput {
  title: string;
  plan: NormalizedPlan;
  /** Model spec, or null for the brief's explicit plan. */
  planner: string | null;
  attempts: number;
  usage: Usage;
}

export function formatPlan(v: PlanViewInput, color: boolean): string {
  const bold = (s: string) => (color ? styleText("bold", s, { validateStream: false }) : s);
  const dim = (s: string) => (color ? styleText("dim", s, { validateStream: false }) : s);
  const tasks = v.plan.waves.flatMap((w) => w.tasks);
  const source = v.planner
    ? `planned by ${v.planner} in ${v.attempts} attempt${v.attempts === 1 ? "" : "s"}, ` +
      `${v.usage.input_tokens + v.usage.output_tokens} tokens`
    : "explicit plan from the brief (no model)";
  const out: string[] = [
    `${bold(v.title)}`,
    `${tasks.length} tasks in ${v.plan.waves.length} waves; ${source}`,
  ];
  if (v.plan.strategy.trim()) out.push(`Strategy: ${oneLine(v.plan.strategy, 300)}`);
  for (const w of v.plan.waves) {
    out.push(
      "",
      bold(`Wave ${w.wave}`) + (w.rationale ? dim(`  ${oneLine(w.rationale, 100)}`) : ""),
    );
    out.push(
      renderTable(
        ["TASK", "AGENT", "DEPENDS ON", "RUN", "VERIFY", "TITLE"],
        w.tasks.map((t) => [
          t.id,
          t.agent,
          t.depends_on.length ? t.depends_on.join(", ") : "-",
          t.run ? String(t.run.length) : "model",
          String(t.verify?.length ?? 0),
          oneLine(t.title, 60),
        ]),
        { indent: 2, align: ["left", "left", "left", "right", "right", "left"] },
      ),
    );
  }
  const perAgent = new Map<string, number>();
  for (const t of tasks) perAgent.set(t.agent, (perAgent.get(t.agent) ?? 0) + 1);
  out.push("", `Agents: ${[...perAgent].map(([a, n]) => `${a} ×${n}`).join(", ")}`);
  if (v.plan.risks.length) out.push("Risks:", ...v.plan.risks.map((r) => `  - ${oneLine(r, 200)}`));
  if (v.plan.success_criteria.length)
    out.push("Success criteria:", ...v.plan.success_criteria.map((c) => `  - ${oneLine(c, 200)}`));
  return out.join("\n") + "\n";
}
