/**
 * The table scripts/chaos prints (Markdown, so it can go into
 * docs/reliability.md as it is), the machine it ran on, and the notes of
 * each scenario under it.
 */
import { execFile } from "node:child_process";
import os from "node:os";
import { promisify } from "node:util";
import { findNatsServer } from "./nats-servers.ts";
import { REPO_ROOT } from "./processes.ts";
import type { ScenarioRow } from "./scenario-row.ts";

export interface MachineFacts {
  date: string;
  host: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  natsServer: string;
  commit: string;
  /** 1-minute load average when the run started (other work on the machine). */
  loadAverage: number;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, { cwd, timeout: 5000 });
    return (stdout || stderr).trim();
  } catch {
    return "unknown";
  }
}

export async function machineFacts(): Promise<MachineFacts> {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: await run(await findNatsServer().catch(() => "nats-server"), ["--version"]),
    commit: await run("git", ["rev-parse", "--short", "HEAD"], REPO_ROOT),
    loadAverage: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One Markdown table row per scenario. */
export function resultTable(rows: readonly ScenarioRow[]): string {
  const head = [
    "scenario",
    "injected (what, how often)",
    "faults",
    "tasks",
    "succeeded",
    "failed",
    "lost",
    "duplicated executions",
    "mission",
    "duration",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const a = r.account;
    const dup = `${a.duplicatedExecutions} (${a.tasksRunMoreThanOnce} task${a.tasksRunMoreThanOnce === 1 ? "" : "s"})`;
    const cells = [
      r.scenario,
      r.injected,
      String(r.faults),
      String(a.tasks),
      String(a.succeeded),
      a.skipped ? `${a.failed} (+${a.skipped} skipped)` : String(a.failed),
      String(a.lost),
      dup,
      a.status,
      seconds(r.durationMs),
    ];
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Per scenario: the mission, the notes, and any broken promise. */
export function resultNotes(rows: readonly ScenarioRow[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const a = r.account;
    out.push(
      `- **${r.scenario}** (${r.size}, seed ${r.seed}, mission ${r.missionId}): ${r.ok ? "ok" : "NOT OK"}`,
    );
    out.push(
      `  - executions ${a.executions} for ${a.tasks} tasks; task_started events ${a.starts}, ` +
        `task_completed events ${a.completions}; executions without a task_started: ${a.unexplainedExecutions}; ` +
        `retried attempts: ${a.extraAttempts}; launcher exit ${r.deployExit ?? "none"}`,
    );
    for (const n of r.notes) out.push(`  - ${n}`);
    if (a.reason) out.push(`  - mission reason: ${a.reason}`);
    for (const p of r.problems) out.push(`  - PROBLEM: ${p}`);
    if (r.dir) out.push(`  - logs kept in ${r.dir}`);
  }
  return out.join("\n");
}

export function machineLine(m: MachineFacts): string {
  return (
    `${m.date} on ${m.host}: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; ` +
    `node ${m.node}, ${m.natsServer}; commit ${m.commit}; load average ${m.loadAverage} at the start`
  );
}
