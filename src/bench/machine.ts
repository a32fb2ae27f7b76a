/**
 * Facts about the machine a benchmark ran on, and how busy it was: figures
 * from a shared two-core machine mean little without them.
 */
import { access, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { natsServerVersion } from "./nats-server.ts";

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  natsServer: string;
  /** Whether bubblewrap is installed (workers sandbox shell steps with it by default) and SWARM_SANDBOX. */
  sandbox: string;
  date: string;
}

export interface LoadSample {
  /** 1-minute load average. */
  load1: number;
  /** Busy share of all cores since the previous sample (0-1), from /proc/stat; null on the first. */
  busy: number | null;
}

export async function machineFacts(): Promise<MachineFacts> {
  const cpus = os.cpus();
  let cpuModel = cpus[0]?.model.trim() ?? "unknown";
  // Some virtual machines report a bare family name; /proc/cpuinfo may say more.
  const info = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const named = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim();
  if (named && named.length > cpuModel.length) cpuModel = named;
  return {
    cpuModel,
    cores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    natsServer: (await natsServerVersion().catch((e: unknown) => `unknown (${String(e)})`)).replace(
      /^nats-server:\s*/,
      "",
    ),
    sandbox: await sandboxFact(),
    date: new Date().toISOString(),
  };
}

async function sandboxFact(): Promise<string> {
  const setting = process.env.SWARM_SANDBOX
    ? `SWARM_SANDBOX=${process.env.SWARM_SANDBOX}`
    : "SWARM_SANDBOX unset (the worker's default: bwrap when it works)";
  for (const dir of (process.env.PATH ?? "/usr/bin").split(":")) {
    if (
      dir &&
      (await access(path.join(dir, "bwrap")).then(
        () => true,
        () => false,
      ))
    ) {
      return `bwrap at ${path.join(dir, "bwrap")}; ${setting}`;
    }
  }
  return `bwrap not installed; ${setting}`;
}

interface CpuTimes {
  busy: number;
  total: number;
}

async function cpuTimes(): Promise<CpuTimes | null> {
  const stat = await readFile("/proc/stat", "utf8").catch(() => null);
  const line = stat?.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Measures the machine's CPU use between calls of `sample()`. */
export function loadMeter(): { sample(): Promise<LoadSample> } {
  let last: CpuTimes | null = null;
  return {
    async sample() {
      const now = await cpuTimes();
      let busy: number | null = null;
      if (now && last && now.total > last.total) {
        busy = (now.busy - last.busy) / (now.total - last.total);
      }
      last = now;
      return { load1: os.loadavg()[0] ?? 0, busy };
    },
  };
}
