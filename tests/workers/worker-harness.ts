/**
 * The orchestrator's side of the worker tests: a real nats-server, the squad
 * streams, a publisher of `task_assigned` events (msg id
 * `<mission>.<task>.<attempt>`, as the orchestrator sends them), a log of
 * every event on `squad.>`, and worker processes of the real CLI.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  watchEvents,
  type EventWatch,
  type NatsConnection,
  type Publisher,
} from "../../src/bus/index.ts";
import {
  makeEvent,
  type EventOf,
  type EventType,
  type SquadEvent,
  type Task,
} from "../../src/schema/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { spawnSwarm, swarmEnv, type SwarmProcess } from "../helpers/swarm-process.ts";

export interface Bus {
  server: NatsServerHandle;
  nc: NatsConnection;
  publisher: Publisher;
  events: EventLog;
  workspace: string;
  close(): Promise<void>;
}

export async function startBus(): Promise<Bus> {
  const server = await startNatsServer();
  const nc = await connectBus({ servers: server.url, name: "test-orchestrator" });
  await provisionStreams(nc);
  const events = new EventLog(nc);
  await events.ready;
  const workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-workers-"));
  return {
    server,
    nc,
    publisher: createPublisher(nc),
    events,
    workspace,
    async close() {
      await events.stop();
      await nc.close();
      await server.stop();
      await rm(workspace, { recursive: true, force: true });
    },
  };
}

/** Every valid event on `squad.>`, in arrival order, with waits on predicates. */
export class EventLog {
  readonly all: SquadEvent[] = [];
  readonly ready: Promise<void>;
  readonly #watch: EventWatch;
  #waiters: Array<() => void> = [];

  constructor(nc: NatsConnection) {
    this.#watch = watchEvents(nc, {
      onEvent: (e) => {
        this.all.push(e);
        for (const w of this.#waiters.splice(0)) w();
      },
    });
    this.ready = this.#watch.ready;
  }

  of<T extends EventType>(type: T, filter: (e: EventOf<T>) => boolean = () => true): EventOf<T>[] {
    return this.all.filter((e): e is EventOf<T> => e.type === type && filter(e as EventOf<T>));
  }

  forTask<T extends EventType>(type: T, mission: string, task: string): EventOf<T>[] {
    return this.of(type, (e) => e.mission_id === mission && e.task_id === task);
  }

  /** Resolves with the first event matching, past or future. */
  async waitFor<T extends EventType>(
    type: T,
    filter: (e: EventOf<T>) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<EventOf<T>> {
    let found: EventOf<T> | undefined;
    await this.until(() => (found = this.of(type, filter)[0]) !== undefined, timeoutMs, type);
    return found!;
  }

  /** The task's result event (task_completed or task_failed). */
  async result(
    mission: string,
    task: string,
    timeoutMs = 20_000,
  ): Promise<EventOf<"task_completed"> | EventOf<"task_failed">> {
    let found: EventOf<"task_completed"> | EventOf<"task_failed"> | undefined;
    await this.until(
      () =>
        (found =
          this.forTask("task_completed", mission, task)[0] ??
          this.forTask("task_failed", mission, task)[0]) !== undefined,
      timeoutMs,
      `result of ${mission}/${task}`,
    );
    return found!;
  }

  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const seen = this.all.map((e) => `${e.type} ${e.mission_id ?? ""}/${e.task_id ?? ""}`);
        reject(new Error(`timed out waiting for ${what}; seen:\n${seen.slice(-40).join("\n")}`));
      }, timeoutMs);
      const poll = () => {
        if (check()) {
          clearTimeout(timer);
          resolve();
        } else this.#waiters.push(poll);
      };
      poll();
    });
  }

  stop(): Promise<void> {
    return this.#watch.stop();
  }
}

let missionSeq = 0;
/** A fresh, valid mission id per test. */
export function newMission(label: string): string {
  return `m-${label}-${process.pid}-${++missionSeq}`;
}

/** A task attempt as the orchestrator would assign it. */
export function makeTask(over: Partial<Task> & Pick<Task, "id" | "agent">): Task {
  return {
    wave: 1,
    title: `task ${over.id}`,
    instructions: `Do ${over.id}.`,
    depends_on: [],
    acceptance: "",
    inputs: {},
    timeout_s: 60,
    attempt: 1,
    max_attempts: 3,
    ...over,
  };
}

export function taskAssigned(mission: string, task: Task): EventOf<"task_assigned"> {
  return makeEvent(
    "task_assigned",
    {
      id: `${mission}.${task.id}.${task.attempt}`,
      mission_id: mission,
      task_id: task.id,
      source: "orchestrator",
      target: task.agent,
    },
    { task },
  );
}

export async function assign(bus: Bus, mission: string, task: Task): Promise<void> {
  await bus.publisher.publish(taskAssigned(mission, task));
}

/** Publish a mission-ending event as the orchestrator (or `swarm cancel`) would. */
export async function endMission(
  bus: Bus,
  mission: string,
  type: "mission_cancelled" | "mission_failed",
  reason: string,
): Promise<void> {
  const fields = { mission_id: mission, source: "orchestrator" };
  await bus.publisher.publish(
    type === "mission_cancelled"
      ? makeEvent(type, fields, { reason })
      : makeEvent(type, fields, { reason, failed_tasks: [] }),
  );
}

export interface WorkerProcess extends SwarmProcess {
  /** `<agent>/<instance>`, from its agent_online event. */
  worker: string;
  instance: string;
}

/**
 * Spawns `swarm worker --agent <agent> [...args]` and waits for its
 * agent_online event (the replica is pulling once that is out).
 */
export async function spawnWorker(
  bus: Bus,
  agent: string,
  env: Record<string, string | undefined> = {},
  args: string[] = [],
): Promise<WorkerProcess> {
  const p = spawnSwarm(
    ["worker", "--agent", agent, ...args],
    swarmEnv(bus.server.url, bus.workspace, env),
  );
  const online = await Promise.race([
    bus.events.waitFor("agent_online", (e) => e.payload.pid === p.pid, 30_000),
    p.exited.then(({ code, signal }) => {
      throw new Error(`worker exited early (${code ?? signal}):\n${p.stderr().slice(-3000)}`);
    }),
  ]);
  return { ...p, worker: online.source, instance: online.payload.instance };
}

/** Pids of live (non-zombie) processes whose command line contains `marker`. */
export async function processesMatching(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir("/proc")).filter((d) => /^\d+$/.test(d))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmd.includes(marker)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    if (state && state !== "Z" && state !== "X") found.push(Number(pid));
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
