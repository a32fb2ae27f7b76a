import { expect } from "vitest";
import type { ScenarioRow } from "../../src/chaos/scenarios.ts";

/** Fixed, so a failure can be repeated: `scripts/chaos --quick --seed 20261121 <scenario>`. */
export const SEED = 20261121;

/** The promise a scenario keeps: the mission completed, nothing lost, every execution announced. */
export function expectNothingLost(row: ScenarioRow): void {
  const where = row.dir ? ` (logs kept in ${row.dir})` : "";
  expect(row.problems, `problems${where}`).toEqual([]);
  const a = row.account;
  expect(a).toMatchObject({ status: "completed", lost: 0, unexplainedExecutions: 0 });
  expect(a.succeeded).toBe(a.tasks);
  // Every execution left one line; those beyond the first per task are the duplicates reported.
  expect(a.executions).toBe(a.tasks + a.duplicatedExecutions);
  expect(row.deployExit).toBe(0);
}
