import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  createPublisher,
  followEvents,
  openJetStreamManager,
  type EventGuard,
  type EventSigner,
  type ReceivedMessage,
} from "../bus/index.ts";
import { BadInputError } from "../errors.ts";
import { ensureStreamsUsable } from "../bus/streams-usable.ts";
import {
  isFinalMissionEvent,
  makeEvent,
  STREAMS,
  type FinalMissionEvent,
  type MissionWorkspace,
  type SquadEvent,
} from "../schema/index.ts";
import { DEFAULT_MAX_PAYLOAD, HEADER_ALLOWANCE, jsonBytes } from "../workers/result-size.ts";

/** `m-20261121-134501-3fa2`: sortable by time, unique, subject- and file-safe. */
export function newMissionId(now = new Date()): string {
  const iso = now.toISOString().replace(/[-:]/g, "");
  return `m-${iso.slice(0, 8)}-${iso.slice(9, 15)}-${randomBytes(2).toString("hex")}`;
}

/** Publishes `mission_submitted`; the mission id is the submitter's. */
export async function submitMission(
  nc: NatsConnection,
  opts: {
    brief: string;
    sourcePath: string | null;
    missionId?: string;
    /** The operator's signature (a registry-configured orchestrator refuses an unsigned submission). */
    signer?: EventSigner | null;
    /** The mission repository's base, made and uploaded first (mission-workspace.ts). */
    workspace?: MissionWorkspace;
  },
): Promise<string> {
  const missionId = opts.missionId ?? newMissionId();
  const event = makeEvent(
    "mission_submitted",
    { id: `${missionId}.submitted`, mission_id: missionId, source: "cli" },
    {
      brief: opts.brief,
      source_path: opts.sourcePath,
      ...(opts.workspace ? { workspace: opts.workspace } : {}),
    },
  );
  // A brief the server can not carry is the submitter's to fix (exit 2), not an outage.
  const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  const bytes = jsonBytes(event) + HEADER_ALLOWANCE;
  if (bytes > maxPayload) {
    throw new BadInputError(
      `the brief makes a ${bytes}-byte mission_submitted message, and this NATS server accepts at ` +
        `most ${maxPayload} bytes (its max_payload): shorten the brief (put long commands in a ` +
        "script in the workspace) or raise max_payload in the server's configuration",
    );
  }
  // An operator may not create streams: then they must exist (the orchestrator makes them).
  await ensureStreamsUsable(nc);
  await createPublisher(nc, { signer: opts.signer ?? null }).publish(event);
  return missionId;
}

/**
 * Follows one mission's events from SQUAD_EVENTS (from `fromSeq`, so nothing
 * published between submit and follow is missed, across reconnects) until
 * its final event.
 */
export async function followMission(
  nc: NatsConnection,
  opts: {
    missionId: string;
    fromSeq: number;
    onEvent?: (e: SquadEvent) => void;
    /** Only events the guard admits count (a forged mission_completed must not end the wait). */
    guard?: EventGuard;
  },
): Promise<FinalMissionEvent> {
  const guard = opts.guard;
  let resolve!: (e: FinalMissionEvent) => void;
  const done = new Promise<FinalMissionEvent>((r) => (resolve = r));
  const feed = await followEvents(nc, {
    fromSeq: opts.fromSeq,
    ...(guard ? { admit: (e: SquadEvent, m: ReceivedMessage) => guard.admit(m, e).accept } : {}),
    onEvent: (e) => {
      if (e.mission_id !== opts.missionId) return;
      opts.onEvent?.(e);
      if (isFinalMissionEvent(e)) resolve(e);
    },
  });
  try {
    return await done;
  } finally {
    await feed.stop();
  }
}

/** The next sequence SQUAD_EVENTS will store: follow from here to see only what comes. */
export async function nextEventsSeq(nc: NatsConnection): Promise<number> {
  const jsm = await openJetStreamManager(nc, { check: false });
  const info = await jsm.streams.info(STREAMS.events);
  return info.state.last_seq + 1;
}
