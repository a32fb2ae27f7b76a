import { missionWorkspace, reportPaths } from "../config.ts";
import { errorMessage } from "../errors.ts";
import { closeMissionSpan } from "../telemetry/index.ts";
import type { Logger } from "../log.ts";
import type { Publisher } from "../bus/index.ts";
import {
  isMissionEndType,
  isTaskResultEvent,
  makeEvent,
  type SquadEvent,
  type TaskResult,
} from "../schema/index.ts";
import {
  isFinal,
  repeatFinal,
  step,
  taskOf,
  type MissionCommand,
  type MissionInput,
  type MissionState,
} from "./mission-machine.ts";
import type { NormalizedPlan } from "./plan-validation.ts";
import { writeReport } from "./report.ts";

export type ReplanCommand = Extract<MissionCommand, { kind: "request_replan" }>;
export type IntegrateCommand = Extract<MissionCommand, { kind: "integrate" }>;

/**
 * The merge queue as a runner sees it (merge-link.ts): it takes integrate
 * commands, looks at the machine's state after every step (the head, which
 * tasks still wait), and lets go of a mission this runner no longer drives.
 */
export interface MergeLink {
  integrate(runner: MissionRunner, cmd: IntegrateCommand): void;
  stepped(runner: MissionRunner): void;
  release(runner: MissionRunner): void;
}

/** Publishes of one step sent before their acks are awaited (bounds a plan's first dispatches). */
const MAX_UNACKED = 256;

/**
 * Commands that may go out before the acks of those before them, and that
 * nothing after them waits for: dispatches (each its own task), wave_completed
 * (a record of what happened) and log lines. Everything else is sent after
 * them and awaited: wave_started thus stays ahead of its wave's dispatches.
 */
function overlaps(cmd: MissionCommand): boolean {
  if (cmd.kind === "dispatch" || cmd.kind === "ignored" || cmd.kind === "integrate") return true;
  return cmd.kind === "emit" && cmd.event.type === "wave_completed";
}

export interface MissionMeta {
  title: string;
  sourcePath: string | null;
  planner: string | null;
  plan: NormalizedPlan | null;
  /**
   * What a replan shows the planner of the brief. Null for a mission resumed
   * after a crash: the brief travels in SQUAD_MISSIONS, which keeps nothing
   * once acked, so the plan's strategy stands in for it.
   */
  brief: { body: string; agents: string[] | null } | null;
}

export interface MissionRunnerDeps {
  publisher: Publisher;
  log: Logger;
  workspaceRoot: string;
  /** Runs the planner for a revised plan; resolves to the next input. */
  replan: (runner: MissionRunner, cmd: ReplanCommand) => Promise<void>;
  /** The final event is published: release the mission. */
  onFinished: (runner: MissionRunner) => void;
  /** Delete a dispatched attempt still waiting in SQUAD_TASKS (by stream sequence). */
  discardQueued: (seq: number) => Promise<void>;
  /** The merge queue (git workspaces); without it an integrate command is only logged. */
  merges?: MergeLink;
}

/**
 * The imperative shell around one mission's pure state machine: inputs are
 * applied one at a time (a queue), and the commands they produce become
 * publishes, planner calls and the report.
 */
export class MissionRunner {
  readonly id: string;
  state: MissionState;
  readonly meta: MissionMeta;
  /** Every result seen, by task and attempt (late ones, and any naming an attempt never dispatched). */
  private readonly resultsByAttempt = new Map<string, Map<number, TaskResult>>();
  /** Ids of events already in SQUAD_EVENTS or published by us: never re-emitted or re-fed. */
  readonly recorded = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private readonly deps: MissionRunnerDeps;
  private readonly log: Logger;
  /** Stream sequence in SQUAD_TASKS of each attempt this runner dispatched, by msg id. */
  private readonly dispatchedSeq = new Map<string, number>();
  /** A tick is waiting in the queue: another one would only repeat it. */
  private tickQueued = false;
  /** The final event is published. */
  finished = false;
  /** The lease was lost or the orchestrator stops: act no more (another owner resumes). */
  abandoned = false;

  constructor(state: MissionState, meta: MissionMeta, deps: MissionRunnerDeps) {
    this.id = state.config.missionId;
    this.state = state;
    this.meta = meta;
    this.deps = deps;
    this.log = deps.log.child({ mission: this.id });
  }

  /** Queue one input; inputs of one mission never interleave. */
  enqueue(input: MissionInput): Promise<void> {
    this.queue = this.queue.then(() => this.apply(input));
    return this.queue;
  }

  /** The clock: timeouts and the time budget. Ticks never pile up behind a slow publish. */
  tick(now: number): void {
    if (this.tickQueued) return;
    this.tickQueued = true;
    this.queue = this.queue.then(() => {
      this.tickQueued = false;
      return this.apply({ type: "tick", now: Math.max(now, Date.now()) });
    });
  }

  /** Queue commands computed elsewhere (a mission rebuilt from its events). */
  enqueueCommands(state: MissionState, commands: MissionCommand[]): Promise<void> {
    this.queue = this.queue.then(async () => {
      if (this.abandoned) return;
      this.state = state;
      await this.execute(commands);
      this.deps.merges?.stepped(this);
    });
    return this.queue;
  }

  /** Resolves when everything queued so far has run. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Stop acting on this mission: queued inputs are dropped, nothing more is published. */
  abandon(): void {
    this.abandoned = true;
    this.deps.merges?.release(this);
  }

  /** An event from SQUAD_EVENTS about this mission. */
  observe(event: SquadEvent, input: MissionInput | null): void {
    if (this.recorded.has(event.id)) return;
    this.recorded.add(event.id);
    if (isTaskResultEvent(event)) {
      this.noteResult(event.task_id, event.payload.result);
    }
    if (input) void this.enqueue(input);
  }

  noteResult(taskId: string | null, result: TaskResult): void {
    if (!taskId) return;
    let byAttempt = this.resultsByAttempt.get(taskId);
    if (!byAttempt) this.resultsByAttempt.set(taskId, (byAttempt = new Map()));
    byAttempt.set(result.attempt, result);
  }

  /**
   * The result the report shows per task: that of its latest attempt the
   * machine dispatched. A result naming an attempt that never was (a
   * confused or forged event, which the machine ignored) is not shown.
   */
  reportResults(): Record<string, TaskResult> {
    const out: Record<string, TaskResult> = {};
    for (const [taskId, byAttempt] of this.resultsByAttempt) {
      const dispatched = taskOf(this.state, taskId)?.attempts.map((a) => a.attempt) ?? [];
      const attempt = Math.max(-1, ...dispatched.filter((n) => byAttempt.has(n)));
      const result = byAttempt.get(attempt);
      if (result) out[taskId] = result;
    }
    return out;
  }

  private async apply(input: MissionInput): Promise<void> {
    if (this.finished || this.abandoned) return;
    if (isFinal(this.state)) {
      // The machine is done but its final event was never published (a publish
      // that failed after its retries): say it again, or nobody ever hears it.
      if (input.type === "tick") await this.execute(repeatFinal(this.state).commands);
      return;
    }
    const r = step(this.state, input);
    this.state = r.state;
    await this.execute(r.commands);
    this.deps.merges?.stepped(this);
  }

  /**
   * Run one step's commands in order. Dispatches (and the other commands of
   * `overlaps`) are sent without waiting for the ack of the one before: they
   * go out in order on the one connection, and their acks are awaited
   * together before any other command (a timeout's task_failed, which replay
   * needs recorded before the retry it causes; wave_started; an abort, which
   * needs the dispatch's sequence; the report and the final event) and before
   * the next input. A crash loses nothing by this: dispatches are not in the
   * record, so resume sends every attempt in flight again.
   */
  private async execute(commands: MissionCommand[]): Promise<void> {
    const sent: Array<Promise<void>> = [];
    for (const cmd of commands) {
      if (this.abandoned) break;
      if (overlaps(cmd)) {
        sent.push(this.runLogged(cmd));
        if (sent.length >= MAX_UNACKED) await Promise.all(sent.splice(0));
        continue;
      }
      await Promise.all(sent.splice(0));
      if (this.abandoned) break;
      await this.runLogged(cmd);
    }
    await Promise.all(sent);
  }

  private async runLogged(cmd: MissionCommand): Promise<void> {
    try {
      await this.run(cmd);
    } catch (err) {
      // A publish that failed after its retries. A lost dispatch fails by
      // start timeout and is retried; a lost final event is repeated on the
      // next tick; a lost wave event is only missing from the record.
      this.log.error({ err: errorMessage(err), command: cmd.kind }, "command failed");
    }
  }

  private async run(cmd: MissionCommand): Promise<void> {
    switch (cmd.kind) {
      case "dispatch": {
        const e = makeEvent(
          "task_assigned",
          {
            id: cmd.msg_id,
            mission_id: this.id,
            task_id: cmd.task.id,
            source: "orchestrator",
            target: cmd.task.agent,
          },
          { task: cmd.task },
        );
        const r = await this.deps.publisher.publish(e);
        this.dispatchedSeq.set(cmd.msg_id, r.seq);
        // A line per task is a measurable share of a busy orchestrator's CPU: dispatches are
        // on the bus (task_assigned), and the mission's own lines stay info.
        if (!this.log.isLevelEnabled("debug")) return;
        this.log.debug(
          {
            task: cmd.task.id,
            attempt: cmd.task.attempt,
            agent: cmd.task.agent,
            duplicate: r.duplicate,
          },
          "task dispatched",
        );
        return;
      }
      case "emit": {
        if (this.recorded.has(cmd.id)) return;
        const e = makeEvent(
          cmd.event.type,
          {
            id: cmd.id,
            timestamp: cmd.timestamp,
            mission_id: this.id,
            task_id: cmd.event.task_id,
            source: "orchestrator",
          },
          cmd.event.payload as never,
        );
        // Marked first, so that our own event coming back from the feed is not fed
        // to the machine again; unmarked if it never got out, so a retry sends it.
        this.recorded.add(cmd.id);
        try {
          await this.deps.publisher.publish(e);
        } catch (err) {
          this.recorded.delete(cmd.id);
          throw err;
        }
        if (e.type === "task_failed") this.noteResult(e.task_id, e.payload.result);
        if (isMissionEndType(e.type)) {
          closeMissionSpan(
            this.id,
            e.type === "mission_completed"
              ? "completed"
              : e.type === "mission_failed"
                ? "failed"
                : "cancelled",
            e.type === "mission_failed" ? e.payload.reason : undefined,
          );
          this.finished = true;
          this.deps.merges?.release(this);
          this.log.info({ status: e.type }, "mission finished");
          this.deps.onFinished(this);
        }
        return;
      }
      case "integrate":
        if (this.deps.merges) this.deps.merges.integrate(this, cmd);
        else
          this.log.error({ task: cmd.task_id }, "no merge queue: the task's commit is not merged");
        return;
      case "request_replan":
        this.log.warn(
          { failed: cmd.failed.map((f) => f.id), revision: cmd.revision },
          "replanning",
        );
        // Outside the queue: ticks and late results keep flowing while the planner thinks.
        void this.deps.replan(this, cmd).catch((err: unknown) => {
          void this.enqueue({ type: "replan_result", now: Date.now(), error: errorMessage(err) });
        });
        return;
      case "abort_tasks": {
        this.log.info(
          { reason: cmd.reason, tasks: cmd.tasks.map((t) => t.task_id) },
          "attempts aborted",
        );
        // An attempt no worker has started would wait in the work queue for a
        // worker that may come much later: take it out. A started one is the
        // worker's (it stops on mission_cancelled; a late result is ignored).
        for (const t of cmd.tasks) {
          if (t.worker !== null) continue;
          const seq = this.dispatchedSeq.get(`${this.id}.${t.task_id}.${t.attempt}`);
          if (seq !== undefined) await this.deps.discardQueued(seq);
        }
        return;
      }
      case "ignored":
        this.log.info(
          { input: cmd.input, task: cmd.task_id, attempt: cmd.attempt, reason: cmd.reason },
          "input ignored",
        );
        return;
      case "finish": {
        const paths = reportPaths(this.deps.workspaceRoot, this.id);
        await writeReport(paths, {
          title: this.meta.title,
          sourcePath: this.meta.sourcePath,
          planner: this.meta.planner,
          plan: this.state.plan ?? this.meta.plan,
          summary: cmd.summary,
          results: this.reportResults(),
          workspace: missionWorkspace(this.deps.workspaceRoot, this.id),
          generatedAt: new Date().toISOString(),
        });
        this.log.info({ report: paths.md, status: cmd.status }, "report written");
        return;
      }
    }
  }
}
