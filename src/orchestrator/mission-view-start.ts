/**
 * Where an orchestrator's start reads SQUAD_EVENTS from: the mission view
 * (src/schema/mission-view.ts) names the unfinished missions and how far
 * the view has read, so the replay starts at the first event of the oldest
 * unfinished mission (or just after the watermark), never at the stream's
 * beginning: the start costs what the unfinished missions hold, not the
 * days of history. Without a usable view (a first start, a bucket emptied
 * by hand) the whole stream is read once and the view built from it.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { MissionViewVersionError, openMissionViewStore } from "../bus/index.ts";
import { resumeFrom } from "../schema/index.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { createMissionViewWriter, type MissionViewWriter } from "./mission-view-writer.ts";

export interface MissionViewStart {
  writer: MissionViewWriter;
  /** First SQUAD_EVENTS sequence the start must replay. */
  fromSeq: number;
}

export async function openMissionView(
  nc: NatsConnection,
  opts: { log: Logger; replicas?: number | undefined },
): Promise<MissionViewStart> {
  const { log } = opts;
  const store = await openMissionViewStore(nc, { replicas: opts.replicas });
  let index;
  try {
    index = await store.index();
  } catch (err) {
    if (err instanceof MissionViewVersionError) throw err;
    // Unreadable (not valid JSON, not the schema): rebuilt from the events over it.
    log.warn(
      { err: errorMessage(err) },
      "mission view index unreadable; rebuilding it from SQUAD_EVENTS",
    );
    index = null;
  }
  if (!index) {
    log.info("no mission view yet: reading all of SQUAD_EVENTS once to build it");
    return { writer: createMissionViewWriter({ store, log, fresh: true }), fromSeq: 1 };
  }
  const fromSeq = resumeFrom(index.value);
  log.info(
    { from_seq: fromSeq, unfinished: index.value.active.length, watermark: index.value.watermark },
    "mission view read: replaying only from the oldest unfinished mission",
  );
  return { writer: createMissionViewWriter({ store, log }), fromSeq };
}
