import type { MissionAdoption } from "./mission-adoption.ts";
import type { MissionRunner } from "./mission-runner.ts";

export interface MissionTimersOptions {
  runners: Map<string, MissionRunner>;
  adoption: MissionAdoption;
  /** The machines' clock: how often every running mission gets a tick. */
  tickMs: number;
  leaseMs: number;
}

export interface MissionTimers {
  stop(): void;
}

/**
 * The orchestrator's clocks: ticks for the machines (timeouts, the time
 * budget), lease renewal three times per lease, and a scan for missions
 * whose lease lapsed twice per lease.
 */
export function startMissionTimers(opts: MissionTimersOptions): MissionTimers {
  const { runners, adoption, leaseMs } = opts;
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const r of runners.values()) r.tick(now);
  }, opts.tickMs);
  const renewer = setInterval(() => adoption.renewAll(), leaseMs / 3);
  const scanner = setInterval(() => adoption.scan(), Math.max(250, leaseMs / 2));
  return {
    stop() {
      clearInterval(ticker);
      clearInterval(renewer);
      clearInterval(scanner);
    },
  };
}
