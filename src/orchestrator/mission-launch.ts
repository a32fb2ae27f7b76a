import { openMissionSpan } from "../telemetry/index.ts";
import { reportPaths } from "../config.ts";
import { isMissionEndType, isTaskResultEvent } from "../schema/index.ts";
import {
  createMission,
  replay,
  resume,
  type MissionCommand,
  type MissionInput,
} from "./mission-machine.ts";
import type { MissionBook } from "./mission-book.ts";
import { inputsFromEvents } from "./mission-history.ts";
import { MissionRunner, type MissionMeta, type MissionRunnerDeps } from "./mission-runner.ts";

export interface MissionLauncherOptions {
  book: MissionBook;
  /** The missions this orchestrator drives now, by id; the launcher adds to it. */
  runners: Map<string, MissionRunner>;
  runnerDeps: MissionRunnerDeps;
  workspaceRoot: string;
  startTimeoutS?: number | undefined;
  maxReplans?: number | undefined;
}

/**
 * The three ways a mission's runner comes to be. Each builds the machine,
 * registers the runner and queues the commands that get it going.
 */
export interface MissionLauncher {
  /**
   * A mission just planned here (its mission_planned is in the book): the
   * machine takes the plan, and its first wave is dispatched.
   */
  startNew(missionId: string, meta: MissionMeta): MissionRunner;
  /**
   * A mission taken over (first start, or its owner died): rebuilt from its
   * recorded events, then what the machine decided but the record lacks is
   * published (re-dispatch of attempts in flight, a replan, the final event,
   * wave events).
   */
  resume(missionId: string): MissionRunner;
  /**
   * A mission that ends before it has a plan (a bad brief, a planner
   * failure, a cancel that came first): through the machine, so it gets a
   * report like any other. Resolves once the input is applied.
   */
  endUnplanned(
    missionId: string,
    submittedAt: number,
    meta: MissionMeta,
    input: MissionInput,
  ): Promise<MissionRunner>;
}

export function createMissionLauncher(opts: MissionLauncherOptions): MissionLauncher {
  const { book, runners, runnerDeps } = opts;

  /** A runner whose machine starts from the mission's first plan, every recorded event noted. */
  function fromBook(missionId: string, meta: MissionMeta | null): MissionRunner {
    const events = book.events(missionId);
    const planned = book.firstPlan(missionId)!;
    // The mission's root span (its ids derived from the mission id): a resume re-opens the same one.
    openMissionSpan(missionId, {
      title: planned.payload.title,
      startTime: planned.payload.submitted_at ?? planned.timestamp,
    });
    const runner = new MissionRunner(
      createMission({
        missionId,
        startedAt: Date.parse(planned.payload.submitted_at ?? planned.timestamp),
        budget: planned.payload.budget ?? {},
        reportPath: reportPaths(opts.workspaceRoot, missionId).md,
        ...(opts.startTimeoutS ? { startTimeoutS: opts.startTimeoutS } : {}),
        ...(opts.maxReplans !== undefined ? { maxReplans: opts.maxReplans } : {}),
      }),
      meta ?? {
        title: planned.payload.title,
        sourcePath: planned.payload.source_path ?? null,
        planner: planned.payload.planner,
        plan: null,
        brief: null,
      },
      runnerDeps,
    );
    for (const e of events) {
      runner.recorded.add(e.id);
      if (isTaskResultEvent(e)) runner.noteResult(e.task_id, e.payload.result);
    }
    return runner;
  }

  return {
    startNew(missionId, meta) {
      const runner = fromBook(missionId, meta);
      // The plan, and anything recorded before it (a cancel that came while the planner thought).
      const started = replay(runner.state, inputsFromEvents(book.events(missionId), missionId));
      runners.set(missionId, runner);
      void runner.enqueueCommands(started.state, started.commands);
      return runner;
    },

    resume(missionId) {
      const runner = fromBook(missionId, null);
      const replayed = replay(runner.state, inputsFromEvents(book.events(missionId), missionId));
      const resumed = resume(replayed.state, Date.now());
      // Final events come from `resumed`; earlier ones the record lacks are sent first.
      const missed = replayed.commands.filter(
        (c): c is Extract<MissionCommand, { kind: "emit" }> =>
          c.kind === "emit" && !runner.recorded.has(c.id) && !isMissionEndType(c.event.type),
      );
      runners.set(missionId, runner);
      void runner.enqueueCommands(resumed.state, [...missed, ...resumed.commands]);
      return runner;
    },

    async endUnplanned(missionId, submittedAt, meta, input) {
      const runner = new MissionRunner(
        createMission({
          missionId,
          startedAt: submittedAt,
          reportPath: reportPaths(opts.workspaceRoot, missionId).md,
        }),
        meta,
        runnerDeps,
      );
      openMissionSpan(missionId, { title: meta.title, startTime: new Date(submittedAt) });
      runners.set(missionId, runner);
      await runner.enqueue(input);
      return runner;
    },
  };
}
