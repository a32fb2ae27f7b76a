/**
 * Benchmark: `swarm status` and an orchestrator's start on a swarm with a
 * short history and on one with a long history, side by side: two
 * nats-servers, one with 10 finished missions in SQUAD_EVENTS, one with
 * 10,000, their events published directly (with the orchestrator's
 * credentials: open mode here) in a few seconds, then a real orchestrator
 * started once on each to build the mission view. Then, in alternating
 * rounds: `swarm status --json` as a process (what a person waits for),
 * the snapshot it reads in this process, and a second orchestrator start
 * (to "orchestrator ready"). For reference, the old way: every event of
 * SQUAD_EVENTS read (`--from-events`).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createPublisher, provisionStreams, readSwarmSnapshot } from "../bus/index.ts";
import { selfCommand } from "../client/self-command.ts";
import {
  MISSION_VIEW_BUCKET,
  MISSION_VIEW_INDEX_KEY,
  MissionViewIndex,
  STREAMS,
  makeEvent,
  parseWith,
  type SquadEvent,
} from "../schema/index.ts";
import { startBenchNatsServer, type BenchNatsServer } from "./nats-server.ts";
import { spawnSwarm } from "./processes.ts";
import { atMost, type Figure, type Section } from "./results.ts";
import { median } from "./stats.ts";
import { swarmEnv } from "./swarm-harness.ts";

export interface StatusHistoryOptions {
  /** Finished missions of the short and the long history. */
  sizes: [number, number];
  /** Alternating rounds of `swarm status --json` (processes) per history. */
  commandRounds: number;
  /** In-process snapshot reads per history. */
  readRounds: number;
  /** Orchestrator starts per history (after the one that built the view). */
  startRounds: number;
}

export interface HistoryFigures {
  missions: number;
  events: number;
  /** Publishing the history, and the first orchestrator start building the view from it. */
  publishMs: number;
  buildMs: number;
  commandMs: number;
  readMs: number;
  startMs: number;
  /** The old way: every event of SQUAD_EVENTS read and folded. */
  fromEventsMs: number;
}

export interface StatusHistoryFigures {
  short: HistoryFigures;
  long: HistoryFigures;
}

/**
 * Finished missions listed by every status read: the same output from both histories, so what
 * differs is only what lies behind it (10 is all the short history has).
 */
const LISTED = 10;

interface Swarm {
  missions: number;
  server: BenchNatsServer;
  nc: NatsConnection;
  dir: string;
  env: NodeJS.ProcessEnv;
  events: number;
  publishMs: number;
  buildMs: number;
}

/** One finished one-task mission: the events an orchestrator and a worker would have recorded. */
function missionEvents(i: number, at: number): SquadEvent[] {
  const id = `m-hist-${String(i).padStart(6, "0")}`;
  const t = (ms: number) => new Date(at + ms).toISOString();
  const env = (ms: number, over: { task_id?: string; source?: string } = {}) => ({
    id: `${id}.${ms}`,
    mission_id: id,
    source: "orchestrator",
    timestamp: t(ms),
    ...over,
  });
  const result = {
    status: "succeeded" as const,
    summary: "done",
    steps: [],
    verification: [],
    usage: { model: null, input_tokens: 0, output_tokens: 0 },
    attempt: 1,
    duration_ms: 1,
    worker: "builder/b1",
  };
  return [
    makeEvent("mission_planned", env(0), {
      title: `history ${i}`,
      planner: null,
      submitted_at: t(0),
      submitted_by: "cli",
      plan: { waves: [{ wave: 1, tasks: [{ id: "t1", agent: "builder", title: "t1", run: [] }] }] },
    }),
    makeEvent("wave_started", env(1), { wave: 1, task_ids: ["t1"] }),
    makeEvent("task_started", env(2, { task_id: "t1", source: "builder/b1" }), {
      attempt: 1,
      worker: "builder/b1",
    }),
    makeEvent("task_completed", env(3, { task_id: "t1", source: "builder/b1" }), { result }),
    makeEvent("mission_completed", env(4), {
      summary: "1 of 1",
      tasks: { total: 1, succeeded: 1, failed: 0 },
      duration_ms: 4,
      usage: { input_tokens: 0, output_tokens: 0 },
      report: null,
    }),
  ];
}

/** Resolves once the view's index covers every event of SQUAD_EVENTS (a KV watch on the index). */
async function viewCaughtUp(nc: NatsConnection): Promise<void> {
  const jsm = await (await import("@nats-io/jetstream")).jetstreamManager(nc);
  const last = (await jsm.streams.info(STREAMS.events)).state.last_seq;
  const kv = await new Kvm(nc).create(MISSION_VIEW_BUCKET, { history: 1 });
  const watch = await kv.watch({ key: MISSION_VIEW_INDEX_KEY });
  try {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      if (parseWith(MissionViewIndex, e.json(), "index").watermark >= last) return;
    }
  } finally {
    watch.stop();
  }
}

async function startSwarm(missions: number): Promise<Swarm> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `squad-bench-history-${missions}-`));
  const server = await startBenchNatsServer();
  const nc = await connect({ servers: server.url, name: `bench-history-${missions}` });
  await provisionStreams(nc);
  const env = swarmEnv(server.url, dir);
  const publisher = createPublisher(nc);
  const t0 = performance.now();
  const start = Date.now() - 86_400_000;
  let events = 0;
  // Pipelined: 200 missions' events in flight at a time.
  for (let i = 0; i < missions; i += 200) {
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(missions, i + 200); k++)
      for (const e of missionEvents(k, start + k * 10)) {
        batch.push(publisher.publish(e));
        events++;
      }
    await Promise.all(batch);
  }
  const publishMs = performance.now() - t0;
  // The first orchestrator start: no view yet, so it reads the whole history once and builds it.
  const t1 = performance.now();
  const orch = await spawnSwarm(["orchestrator"], env, path.join(dir, "orchestrator-build.log"));
  await orch.waitForLog(/"orchestrator ready"/, 300_000);
  await viewCaughtUp(nc);
  const buildMs = performance.now() - t1;
  await orch.stop();
  return { missions, server, nc, dir, env, events, publishMs, buildMs };
}

async function stopSwarm(s: Swarm): Promise<void> {
  await s.nc.close().catch(() => undefined);
  await s.server.stop();
  if (!process.env.SWARM_BENCH_KEEP) await rm(s.dir, { recursive: true, force: true });
}

async function timeStatusCommand(s: Swarm): Promise<number> {
  const self = await selfCommand();
  const t = performance.now();
  const { stdout } = await promisify(execFile)(
    self.command,
    [...self.args, "status", "--json", "--missions", String(LISTED)],
    {
      env: s.env,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const ms = performance.now() - t;
  const report = JSON.parse(stdout) as { mission_view: { state: string } };
  if (report.mission_view.state !== "ok")
    throw new Error(`swarm status: mission view ${report.mission_view.state}`);
  return ms;
}

async function timeRead(s: Swarm, from: "view" | "events"): Promise<number> {
  const t = performance.now();
  const snap = await readSwarmSnapshot(s.nc, {
    missions: from === "view" ? { from: "view", finished: LISTED } : { from: "events" },
  });
  const ms = performance.now() - t;
  const got =
    from === "view"
      ? snap.missionView?.state === "ok"
        ? snap.missionView.missions.length
        : -1
      : snap.missionEvents.length;
  if (got <= 0) throw new Error(`nothing read from the ${from} of ${s.missions} missions`);
  return ms;
}

async function timeStart(s: Swarm, round: number): Promise<number> {
  const t = performance.now();
  const orch = await spawnSwarm(
    ["orchestrator"],
    s.env,
    path.join(s.dir, `orchestrator-${round}.log`),
  );
  await orch.waitForLog(/"orchestrator ready"/, 120_000);
  const ms = performance.now() - t;
  await orch.stop();
  return ms;
}

/** Alternating rounds: A then B, then B then A, ... so that a drift of the machine weighs on both. */
async function alternate(
  a: Swarm,
  b: Swarm,
  rounds: number,
  f: (s: Swarm, round: number) => Promise<number>,
): Promise<[number[], number[]]> {
  const out: [number[], number[]] = [[], []];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) out[i]!.push(await f(i === 0 ? a : b, r));
  }
  return out;
}

export async function statusHistory(opts: StatusHistoryOptions): Promise<StatusHistoryFigures> {
  const short = await startSwarm(opts.sizes[0]);
  let long: Swarm | null = null;
  try {
    long = await startSwarm(opts.sizes[1]);
    const [cmdA, cmdB] = await alternate(short, long, opts.commandRounds, (s) =>
      timeStatusCommand(s),
    );
    const [readA, readB] = await alternate(short, long, opts.readRounds, (s) =>
      timeRead(s, "view"),
    );
    const [startA, startB] = await alternate(short, long, opts.startRounds, timeStart);
    const [oldA, oldB] = await alternate(short, long, 2, (s) => timeRead(s, "events"));
    const figures = (s: Swarm, cmd: number[], read: number[], start: number[], old: number[]) => ({
      missions: s.missions,
      events: s.events,
      publishMs: s.publishMs,
      buildMs: s.buildMs,
      commandMs: median(cmd),
      readMs: median(read),
      startMs: median(start),
      fromEventsMs: median(old),
    });
    return {
      short: figures(short, cmdA, readA, startA, oldA),
      long: figures(long, cmdB, readB, startB, oldB),
    };
  } finally {
    await stopSwarm(short);
    if (long) await stopSwarm(long);
  }
}

/** Within 20% of each other: the "cost independent of history". */
const MAX_RATIO = 1.2;

export function statusHistorySection(
  f: StatusHistoryFigures,
  opts: StatusHistoryOptions,
  durationMs: number,
): Section {
  const { short: a, long: b } = f;
  const pair = (
    key: string,
    name: string,
    va: number,
    vb: number,
    withTarget: boolean,
  ): Figure[] => {
    const r = vb / va;
    return [
      {
        key: `${key}.short`,
        name: `${name}, ${a.missions} finished missions`,
        value: va,
        unit: "ms",
      },
      {
        key: `${key}.long`,
        name: `${name}, ${b.missions} finished missions`,
        value: vb,
        unit: "ms",
        reference: { label: `the same with ${a.missions}`, value: va, unit: "ms" },
        ratio: r,
        ...(withTarget ? { target: atMost(r, MAX_RATIO, "×") } : {}),
      },
    ];
  };
  return {
    id: "status-history",
    title: "9. Status cost against history",
    figures: [
      ...pair(
        "history.command",
        "`swarm status --json` (a process, wall time)",
        a.commandMs,
        b.commandMs,
        true,
      ),
      ...pair(
        "history.read",
        "status snapshot read in-process (mission view)",
        a.readMs,
        b.readMs,
        true,
      ),
      ...pair(
        "history.start",
        'orchestrator start to "orchestrator ready" (view present)',
        a.startMs,
        b.startMs,
        true,
      ),
      ...pair(
        "history.events",
        "the old way: every event of SQUAD_EVENTS read (`--from-events`)",
        a.fromEventsMs,
        b.fromEventsMs,
        false,
      ),
    ],
    notes: [
      `Two nats-servers side by side: one with ${a.missions} finished one-task missions in SQUAD_EVENTS (${a.events} events), one with ${b.missions} (${b.events} events), published directly in ${(a.publishMs / 1000).toFixed(1)} s and ${(b.publishMs / 1000).toFixed(1)} s; a first orchestrator start built each mission view from its stream (${(a.buildMs / 1000).toFixed(1)} s and ${(b.buildMs / 1000).toFixed(1)} s, once per swarm), then stopped. Medians of alternating rounds: ${opts.commandRounds} \`swarm status --json\` processes, ${opts.readRounds} in-process reads (readSwarmSnapshot); every status read lists the ${LISTED} most recent finished missions (\`--missions ${LISTED}\`: all the short history has, so both print the same amount), ${opts.startRounds} orchestrator starts, 2 reads of every event (the old way, for reference). Target: the long history within ${Math.round((MAX_RATIO - 1) * 100)}% of the short one.`,
    ],
    durationMs,
  };
}
