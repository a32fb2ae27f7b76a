/**
 * The mission view in tests: built from what SQUAD_EVENTS holds by the
 * orchestrator's own writer (for suites that publish events without running
 * an orchestrator), and waited for (a KV watch, no polling).
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { openMissionViewStore, replayEvents } from "../../src/bus/index.ts";
import { silentLogger } from "../../src/log.ts";
import { createMissionViewWriter } from "../../src/orchestrator/mission-view-writer.ts";
import {
  MISSION_VIEW_BUCKET,
  MissionSummaryValue,
  missionViewKey,
  parseWith,
} from "../../src/schema/index.ts";

/** Folds every event of SQUAD_EVENTS into the view (what an orchestrator does as they arrive). */
export async function buildMissionView(nc: NatsConnection): Promise<void> {
  const writer = createMissionViewWriter({
    store: await openMissionViewStore(nc),
    log: silentLogger,
  });
  for await (const { event, seq } of replayEvents(nc)) writer.observe(event, seq);
  await writer.stop();
}

/** Resolves with the mission's summary once `until` holds for it. */
export async function waitForMissionSummary(
  nc: NatsConnection,
  missionId: string,
  until: (s: MissionSummaryValue) => boolean,
): Promise<MissionSummaryValue> {
  const kv = await new Kvm(nc).create(MISSION_VIEW_BUCKET, { history: 1 });
  const watch = await kv.watch({ key: missionViewKey(missionId) });
  try {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const s = parseWith(MissionSummaryValue, e.json(), e.key);
      if (until(s)) return s;
    }
  } finally {
    watch.stop();
  }
  throw new Error(`the watch of ${missionId} ended`);
}
