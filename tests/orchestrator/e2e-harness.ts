/**
 * The end-to-end harness of the orchestrator suites: a real nats-server,
 * real `swarm orchestrator` and `swarm worker` processes, and helpers to
 * submit briefs and read what happened from the bus (SQUAD_EVENTS, plus a
 * core subscription on `squad.tasks.>` that sees every dispatch, duplicates
 * included, which the work queue itself does not keep).
 *
 *   const swarm = await startSwarm();                  // beforeAll
 *   swarm.spawnWorker("builder", { concurrency: 2 });
 *   const orch = swarm.spawnOrchestrator({ SWARM_START_TIMEOUT_S: "2" });
 *   await swarm.ready(orch, "orchestrator");
 *   const id = await swarm.submit(briefText({ title, plan }));
 *   const final = await swarm.waitFinal(id);
 *   await swarm.stop();                                // afterAll
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import {
  connectBus,
  createPublisher,
  replayEvents,
  watchEvents,
  type EventWatch,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { reportPaths } from "../../src/config.ts";
import { silentLogger } from "../../src/log.ts";
import { followMission, newMissionId, submitMission } from "../../src/client/submission.ts";
import {
  makeEvent,
  type EventOf,
  type FinalMissionEvent,
  type SquadEvent,
} from "../../src/schema/index.ts";
import type { FakeReply, FakeRequest, FakeScript } from "../helpers/fake-ollama.ts";
import {
  startNatsServer,
  type NatsServerHandle,
  type NatsServerOptions,
} from "../helpers/nats-server.ts";
import {
  killAllSwarms,
  spawnSwarm,
  swarmEnv,
  type SwarmProcess,
} from "../helpers/swarm-process.ts";

export interface Dispatch {
  mission: string;
  task: string;
  attempt: number;
  agent: string;
}

export interface Swarm {
  nats: NatsServerHandle;
  nc: NatsConnection;
  /** SWARM_WORKSPACE of every process. */
  workspace: string;
  /** Every task_assigned published so far, in order (re-publishes included). */
  dispatches: Dispatch[];
  env(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv;
  spawnOrchestrator(extra?: Record<string, string | undefined>): SwarmProcess;
  spawnWorker(
    agent: string,
    opts?: { concurrency?: number; env?: Record<string, string | undefined> },
  ): SwarmProcess;
  /** Resolves once the process logged that it is up. */
  ready(p: SwarmProcess, kind: "orchestrator" | "worker"): Promise<void>;
  submit(brief: string, missionId?: string): Promise<string>;
  /** The orchestrator's final event; rejects after timeoutMs with the orchestrators' logs. */
  waitFinal(missionId: string, timeoutMs?: number): Promise<FinalMissionEvent>;
  /** Resolves with the first event of the mission that matches. */
  waitEvent<T extends SquadEvent>(
    missionId: string,
    match: (e: SquadEvent) => e is T,
    timeoutMs?: number,
  ): Promise<T>;
  /** The mission's events in SQUAD_EVENTS, in order. */
  events(missionId: string): Promise<SquadEvent[]>;
  dispatchesOf(missionId: string): Dispatch[];
  /** Publish a cancel request as `swarm cancel` does. */
  cancel(missionId: string, reason: string): Promise<void>;
  report(missionId: string): Promise<{ md: string; json: MissionReportJson }>;
  /** SIGKILL every orchestrator spawned so far and wait for them to exit. */
  killOrchestrators(): Promise<void>;
  stop(): Promise<void>;
}

/** The parts of the `.json` report the tests read. */
export interface MissionReportJson {
  mission_id: string;
  title: string;
  status: string;
  reason: string | null;
  planner: string | null;
  duration_ms: number;
  tasks: Record<string, number>;
  usage: {
    input_tokens: number;
    output_tokens: number;
    byAgent: Record<string, { input_tokens: number; output_tokens: number }>;
    byModel: Record<string, { input_tokens: number; output_tokens: number }>;
  };
  revision: number;
  replans: Array<{ revision: number; failed: Array<{ id: string }> }>;
  failed_tasks: Array<{ id: string; error: string; attempts: number }>;
  task_results: Array<{
    id: string;
    agent: string;
    wave: number;
    status: string;
    attempts: number;
    duration_ms: number | null;
    usage: { input_tokens: number; output_tokens: number };
    workers: string[];
    result: {
      status: string;
      attempt: number;
      steps: Array<{ tool: string; args: Record<string, unknown>; ok: boolean }>;
      verification: Array<{ command: string; ok: boolean; exit_code: number | null }>;
      usage: { model: string | null; input_tokens: number; output_tokens: number };
      duration_ms: number;
      worker: string;
    } | null;
  }>;
}

export async function startSwarm(
  baseEnv: Record<string, string | undefined> = {},
  natsOptions: NatsServerOptions = {},
): Promise<Swarm> {
  const nats = await startNatsServer(natsOptions);
  const workspace = await mkdtemp(path.join(os.tmpdir(), "squad-e2e-"));
  const nc = await connectBus({ servers: nats.url, name: "e2e-test", log: silentLogger });
  const dispatches: Dispatch[] = [];
  const taskWatch: EventWatch = watchEvents(nc, {
    subject: "squad.tasks.>",
    onEvent: (e) => {
      if (e.type !== "task_assigned" || !e.mission_id) return;
      const t = e.payload.task;
      dispatches.push({ mission: e.mission_id, task: t.id, attempt: t.attempt, agent: t.agent });
    },
  });
  await taskWatch.ready;
  const orchestrators: SwarmProcess[] = [];

  const env = (extra: Record<string, string | undefined> = {}) =>
    swarmEnv(nats.url, workspace, { SWARM_ROSTER: undefined, ...baseEnv, ...extra });

  const logsOfOrchestrators = () =>
    orchestrators.map((o, i) => `--- orchestrator ${i} (pid ${o.pid})\n${o.stderr().slice(-4000)}`);

  const swarm: Swarm = {
    nats,
    nc,
    workspace,
    dispatches,
    env,
    spawnOrchestrator(extra = {}) {
      const p = spawnSwarm(["orchestrator"], env(extra));
      orchestrators.push(p);
      return p;
    },
    spawnWorker(agent, opts = {}) {
      const args = ["worker", "--agent", agent];
      if (opts.concurrency) args.push("--concurrency", String(opts.concurrency));
      return spawnSwarm(args, env(opts.env));
    },
    ready(p, kind) {
      // Generous: several processes starting at once on a loaded machine (CI) take a while;
      // a process that dies instead shows in the rejection's output.
      return p.waitFor(
        kind === "orchestrator" ? /orchestrator ready/ : /worker replica online/,
        90_000,
      );
    },
    async submit(brief, missionId = newMissionId()) {
      return submitMission(nc, { brief, sourcePath: null, missionId });
    },
    async waitFinal(missionId, timeoutMs = 45_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new Error(
              `mission ${missionId} did not end within ${timeoutMs} ms\n${logsOfOrchestrators().join("\n")}`,
            ),
          );
        }, timeoutMs);
      });
      try {
        return await Promise.race([followMission(nc, { missionId, fromSeq: 1 }), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async waitEvent(missionId, match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          void watch.stop();
          reject(new Error(`no matching event for ${missionId} within ${timeoutMs} ms`));
        }, timeoutMs);
        let done = false;
        const finish = (e: SquadEvent) => {
          if (done || e.mission_id !== missionId || !match(e)) return;
          done = true;
          clearTimeout(timer);
          void watch.stop();
          resolve(e as never);
        };
        const watch = watchEvents(nc, { subject: "squad.coordination", onEvent: finish });
        // Whatever matched before the subscription is in the stream.
        void watch.ready.then(async () => {
          for (const e of await swarm.events(missionId)) finish(e);
        });
      });
    },
    async events(missionId) {
      const out: SquadEvent[] = [];
      for await (const { event } of replayEvents(nc, { missionId })) out.push(event);
      return out;
    },
    dispatchesOf(missionId) {
      return dispatches.filter((d) => d.mission === missionId);
    },
    async cancel(missionId, reason) {
      await createPublisher(nc).publish(
        makeEvent(
          "mission_cancelled",
          { mission_id: missionId, source: "cli" },
          { reason, requested_by: "e2e-test" },
        ),
      );
    },
    async report(missionId) {
      const paths = reportPaths(workspace, missionId);
      const [md, json] = await Promise.all([
        readFile(paths.md, "utf8"),
        readFile(paths.json, "utf8"),
      ]);
      return { md, json: JSON.parse(json) as MissionReportJson };
    },
    async killOrchestrators() {
      const all = orchestrators.splice(0);
      for (const o of all) o.kill("SIGKILL");
      await Promise.all(all.map((o) => o.exited));
    },
    async stop() {
      await killAllSwarms();
      await taskWatch.stop();
      await nc.close();
      await nats.stop();
      await rm(workspace, { recursive: true, force: true });
    },
  };
  return swarm;
}

// ---------------------------------------------------------------- briefs

export interface PlanTaskSpec {
  id: string;
  agent: string;
  title?: string;
  instructions?: string;
  depends_on?: string[];
  acceptance?: string;
  run?: string[];
  verify?: string[];
  timeout_s?: number;
  max_attempts?: number;
}

/** A plan in the contract's shape: waves of tasks (titles default to the id). */
export function plan(...waves: PlanTaskSpec[][]) {
  return {
    strategy: "as the test says",
    waves: waves.map((tasks, i) => ({
      wave: i + 1,
      rationale: `wave ${i + 1}`,
      tasks: tasks.map((t) => ({ title: `task ${t.id}`, instructions: `Do ${t.id}.`, ...t })),
    })),
  };
}

/** A brief: YAML front matter (title, agents, budget, plan...) and a Markdown body. */
export function briefText(front: Record<string, unknown>, body = "# Mission\n\nAs planned.\n") {
  return `---\n${stringify(front)}---\n\n${body}`;
}

// ---------------------------------------------------------------- events

export const is =
  <T extends SquadEvent["type"]>(type: T) =>
  (e: SquadEvent): e is EventOf<T> =>
    e.type === type;

export function ofType<T extends SquadEvent["type"]>(events: SquadEvent[], type: T): EventOf<T>[] {
  return events.filter(is(type));
}

/** How many events of `type` each task has. */
export function countByTask(
  events: SquadEvent[],
  type: SquadEvent["type"],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events)
    if (e.type === type && e.task_id) out[e.task_id] = (out[e.task_id] ?? 0) + 1;
  return out;
}

// ---------------------------------------------------------------- fake model scripts

/**
 * A fake-model script that answers each worker's task by its own list of
 * replies: the task and mission are read from the task prompt (`# Task <id>:`
 * and the workspace path), the turn from the number of assistant messages so
 * far. Several missions and tasks can then share one fake server.
 */
export function taskRouter(): {
  script: FakeScript;
  on(missionId: string, taskId: string, replies: FakeReply[]): void;
  requestsOf(missionId: string, taskId: string): FakeRequest[];
} {
  const scripts = new Map<string, FakeReply[]>();
  const seen = new Map<string, FakeRequest[]>();
  return {
    script(req) {
      const key = taskKey(req);
      if (!key) return { status: 400, error: "the fake model found no task in the prompt" };
      seen.set(key, [...(seen.get(key) ?? []), req]);
      const replies = scripts.get(key);
      if (!replies) return { status: 400, error: `no script for ${key}` };
      const turn = req.messages.filter((m) => m.role === "assistant").length;
      return replies[turn] ?? { status: 400, error: `script for ${key} has no turn ${turn}` };
    },
    on(missionId, taskId, replies) {
      scripts.set(`${missionId}/${taskId}`, replies);
    },
    requestsOf(missionId, taskId) {
      return seen.get(`${missionId}/${taskId}`) ?? [];
    },
  };
}

function taskKey(req: FakeRequest): string | null {
  const first = req.messages.find((m) => m.role === "user");
  const text = typeof first?.content === "string" ? first.content : "";
  const task = /^# Task (\S+):/m.exec(text)?.[1];
  const ws = /Your workspace is (\S+?);/.exec(text)?.[1];
  return task && ws ? `${path.basename(ws)}/${task}` : null;
}
