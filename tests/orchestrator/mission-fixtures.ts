/** Small builders for the mission machine tests. */
import { makeEvent } from "../../src/schema/envelope.ts";
import type { SquadEvent } from "../../src/schema/events.ts";
import type { PlanInput, PlanTask } from "../../src/schema/plan.ts";
import type { TaskResult } from "../../src/schema/result.ts";
import {
  createMission,
  step,
  taskOf,
  type CreateMissionOptions,
  type MissionCommand,
  type MissionInput,
  type MissionState,
} from "../../src/orchestrator/mission-machine.ts";

export const T0 = Date.parse("2025-03-01T12:00:00.000Z");
export const MISSION = "m1";
export const s = (seconds: number) => T0 + seconds * 1000;

type TaskSketch = Partial<PlanTask> & { id: string };

/** waves of tasks; agent defaults to "builder", instructions to "do <id>". */
export function plan(...waves: TaskSketch[][]): PlanInput {
  return {
    strategy: "test",
    waves: waves.map((tasks, i) => ({
      wave: i + 1,
      tasks: tasks.map((t) => ({
        agent: "builder",
        title: `task ${t.id}`,
        instructions: `do ${t.id}`,
        ...t,
      })),
    })),
  };
}

export function mission(opts: Partial<CreateMissionOptions> = {}): MissionState {
  return createMission({ missionId: MISSION, startedAt: T0, maxReplans: 0, ...opts });
}

export function result(
  status: "succeeded" | "failed",
  attempt: number,
  opts: Partial<TaskResult> & { tokens?: [number, number] } = {},
): TaskResult {
  const { tokens = [10, 5], ...rest } = opts;
  return {
    status,
    summary: status === "succeeded" ? "done" : "broke",
    ...(status === "failed" ? { error: "exit 1" } : {}),
    steps: [],
    verification: [],
    usage: { model: "ollama:qwen2.5:7b", input_tokens: tokens[0], output_tokens: tokens[1] },
    attempt,
    duration_ms: 1000,
    worker: "builder/w1",
    ...rest,
  };
}

export const planned = (p: PlanInput, now = T0): MissionInput => ({
  type: "planned",
  now,
  plan: p,
  revision: 0,
});
export const started = (
  task_id: string,
  attempt: number,
  now: number,
  worker = "builder/w1",
): MissionInput => ({
  type: "task_started",
  now,
  task_id,
  attempt,
  worker,
});
export const ok = (
  task_id: string,
  attempt: number,
  now: number,
  opts: Parameters<typeof result>[2] = {},
): MissionInput => ({
  type: "task_result",
  now,
  task_id,
  attempt,
  result: result("succeeded", attempt, { summary: `${task_id} done`, ...opts }),
});
export const bad = (
  task_id: string,
  attempt: number,
  now: number,
  opts: Parameters<typeof result>[2] = {},
): MissionInput => ({
  type: "task_result",
  now,
  task_id,
  attempt,
  result: result("failed", attempt, { error: `${task_id} broke`, ...opts }),
});
export const tick = (now: number): MissionInput => ({ type: "tick", now });

/**
 * Freeze a value and everything it holds. A step given a frozen state throws
 * on any write to it (ES modules are strict), which proves the machine never
 * modifies the state it is given.
 */
export function deepFreeze<T>(value: T, seen = new Set<object>()): T {
  if (value === null || typeof value !== "object" || seen.has(value)) return value;
  seen.add(value);
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v, seen);
  return value;
}

/** A driver that keeps the state and the commands of each step; every state it steps is frozen. */
export class Run {
  state: MissionState;
  last: MissionCommand[] = [];
  all: MissionCommand[] = [];
  constructor(state: MissionState) {
    this.state = state;
  }
  feed(...inputs: MissionInput[]): MissionCommand[] {
    this.last = [];
    for (const input of inputs) {
      const r = step(deepFreeze(this.state), input);
      this.state = r.state;
      this.last.push(...r.commands);
      this.all.push(...r.commands);
    }
    return this.last;
  }
  task(id: string) {
    const t = taskOf(this.state, id);
    if (!t) throw new Error(`no task ${id}`);
    return t;
  }
}

/** "a#1" for every dispatch command. */
export function dispatched(cmds: MissionCommand[]): string[] {
  return cmds.flatMap((c) => (c.kind === "dispatch" ? [`${c.task.id}#${c.task.attempt}`] : []));
}

/** A compact trace of the commands: "dispatch a#1", "emit wave_started 1", "finish completed", ... */
export function trace(cmds: MissionCommand[]): string[] {
  return cmds.map((c) => {
    switch (c.kind) {
      case "dispatch":
        return `dispatch ${c.task.id}#${c.task.attempt}`;
      case "integrate":
        return `integrate ${c.task_id}#${c.attempt}`;
      case "emit": {
        const e = c.event;
        if (e.type === "wave_started" || e.type === "wave_completed")
          return `emit ${e.type} ${e.payload.wave}`;
        if (e.type === "task_failed")
          return `emit task_failed ${e.task_id}#${e.payload.result.attempt}`;
        return `emit ${e.type}`;
      }
      case "request_replan":
        return `request_replan r${c.revision}`;
      case "abort_tasks":
        return `abort ${c.tasks.map((t) => `${t.task_id}#${t.attempt}`).join(",")}`;
      case "ignored":
        return `ignored ${c.input}`;
      case "finish":
        return `finish ${c.status}`;
    }
  });
}

export function commandsOf<K extends MissionCommand["kind"]>(
  cmds: MissionCommand[],
  kind: K,
): Array<Extract<MissionCommand, { kind: K }>> {
  return cmds.filter((c): c is Extract<MissionCommand, { kind: K }> => c.kind === kind);
}

/** The contract event an emit command becomes (validated by the real schemas). */
export function eventOf(c: Extract<MissionCommand, { kind: "emit" }>): SquadEvent {
  return makeEvent(
    c.event.type,
    {
      mission_id: MISSION,
      task_id: c.event.task_id,
      source: "orchestrator",
      id: c.id,
      timestamp: c.timestamp,
    },
    c.event.payload,
  );
}
