/**
 * What a mission's branch holds, read as a client would: its head fetched
 * from the bundle store into a cache of the test's own (the orchestrator
 * removes its cache when the mission ends).
 */
import path from "node:path";
import type { BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";

/** Task ids of the commits up to `head` (Squad-Task trailers), oldest first. */
export async function tasksAt(
  store: BundleStore,
  mission: string,
  head: string,
  root: string,
): Promise<string[]> {
  const repo = await MissionRepo.open(path.join(root, ".test-reader"), mission, store);
  await repo.ensure(head);
  const log = await repo.git([
    "log",
    "--reverse",
    "--format=%(trailers:key=Squad-Task,valueonly,separator=)",
    head,
  ]);
  return log
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}
