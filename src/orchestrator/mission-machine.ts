/**
 * The mission state machine: `step(state, input) → { state, commands }`.
 *
 * Pure and deterministic: no I/O, no clock, no randomness. Time arrives as
 * `now` on every input. The same inputs in the same order give the same state
 * and commands, so resuming after a crash is replaying the mission's recorded
 * events (see `mission-history.ts`) and then calling `resume`.
 *
 * Inputs (types in mission-state.ts), fed by the shell:
 *   planned        {plan | error, revision?}   the first plan (or the planner gave up)
 *   task_started   {task_id, attempt, worker, delivery?}
 *   task_result    {task_id, attempt, result}  task_completed / task_failed
 *   tick           {}                         periodic: timeouts and the time budget
 *   cancel         {reason, requested_by?}
 *   replan_result  {plan | error}             answer to a request_replan
 *
 * Commands, which the shell executes in order:
 *   dispatch        publish task_assigned for one attempt (msg id <mission>.<task>.<attempt>)
 *   emit            publish wave_started / wave_completed / task_failed (an attempt
 *                   the orchestrator timed out) / mission_completed / mission_failed /
 *                   mission_cancelled, with the given id and timestamp
 *   request_replan  run the planner with the results so far, then feed replan_result
 *   abort_tasks     stop in-flight attempts (cancel, mission end, an attempt timed out)
 *   ignored         a late, duplicate or unknown input: log it
 *   finish          write the report; comes before the final emit
 *
 * Rules:
 * - A task is dispatched as soon as all its dependencies have succeeded, with
 *   every other ready task in the same step (parallel); waves do not hold back
 *   an unrelated fast branch. wave_started precedes the first dispatch of a
 *   wave; wave_completed follows the last of its tasks reaching succeeded/failed.
 *   (A revision's wave made only of tasks kept as done is neither.)
 * - A failed attempt is retried as attempt+1 up to the task's max attempts,
 *   unless the result says `retryable: false`. Attempt numbers continue across
 *   revisions (they are the dedupe key of dispatches and claims).
 * - On a tick, an attempt not started within `startTimeoutS` of its dispatch,
 *   or without a result `timeout_s + resultGraceS` after its start, fails: the
 *   machine emits a `task_failed` whose result has `worker: "orchestrator"`,
 *   aborts the attempt, and treats that result like any other. Because the
 *   timeout is an event in the record, replay reproduces it without ticks
 *   (ticks are not recorded). When the shell reads that event back it is a
 *   duplicate and ignored. If a worker's event was already in the stream
 *   before the timeout event, replay applies it first: the same decisions,
 *   with that attempt's start recorded.
 * - A task that finally failed: while replans remain, dispatch stops,
 *   in-flight attempts drain (their failures are not retried), then
 *   request_replan. A revised plan replaces the remaining work: tasks that
 *   succeeded are kept and never dispatched again (a revised task with the
 *   same id is kept as done); the rest is superseded. With no replan left, or
 *   when replanning fails, mission_failed names each failed task and its error.
 * - Budgets: tokens (every result's usage, including a late result of an
 *   attempt that had timed out) and time since `config.startedAt` (on ticks).
 *   Exceeding one fails the mission with "budget exceeded: ...".
 * - Cancel stops dispatch, aborts in-flight attempts, emits mission_cancelled.
 * - Results or starts for an attempt that is not current, duplicates, and
 *   every input after a final state give an `ignored` command and no change.
 *
 * Resume after a crash: rebuild the state with `replay(createMission(...),
 * inputsFromEvents(recorded))`, then execute `resume(state, now).commands`.
 * Those re-dispatch every attempt in flight: the shell publishes them with the
 * same msg id `<mission>.<task>.<attempt>`, so JetStream drops the copy of an
 * attempt still queued (within its dedupe window) and workers drop a claim they
 * already made (they de-duplicate on the same key). A re-dispatched attempt is
 * thus run at most once, and one lost in the crash is published again.
 * To keep replay faithful the shell records before it acts: publish
 * mission_planned before feeding `planned`/`replan_result`, and pass each
 * event's own timestamp as `now` for inputs made from events.
 */
import type { TaskResult, Usage } from "../schema/result.ts";
import type { Task } from "../schema/task.ts";
import { planTasks, validatePlan, type NormalizedPlan } from "./plan-validation.ts";
import {
  ORCHESTRATOR_WORKER,
  currentAttempt,
  inFlightAttempts,
  isFinal,
  summarize,
  taskCounts,
  type AttemptRecord,
  type EmittedEvent,
  type FailedTask,
  type FinalStatus,
  type MissionCommand,
  type MissionInput,
  type MissionState,
  type StepResult,
  type TaskOutcome,
  type TaskRecord,
  type TokenCount,
} from "./mission-state.ts";

export * from "./mission-state.ts";

/** Working context of one step: a private copy of the state and the commands so far. */
interface Ctx {
  s: MissionState;
  out: MissionCommand[];
  now: number;
}

/** Apply one input. The given state is not modified. */
export function step(state: MissionState, input: MissionInput): StepResult {
  const ctx: Ctx = { s: structuredClone(state), out: [], now: input.now };
  if (isFinal(ctx.s)) {
    ignore(ctx, input, `the mission is already ${ctx.s.status}`);
    return { state: ctx.s, commands: ctx.out };
  }
  switch (input.type) {
    case "planned":
      onPlanned(ctx, input);
      break;
    case "replan_result":
      onReplanResult(ctx, input);
      break;
    case "task_started":
      onTaskStarted(ctx, input);
      break;
    case "task_result":
      onTaskResult(ctx, input);
      break;
    case "tick":
      onTick(ctx);
      break;
    case "cancel":
      finish(ctx, "cancelled", input.reason, input.requested_by);
      break;
  }
  return { state: ctx.s, commands: ctx.out };
}

/** Apply inputs in order; returns the final state and every command produced. */
export function replay(initial: MissionState, inputs: readonly MissionInput[]): StepResult {
  let state = initial;
  const commands: MissionCommand[] = [];
  for (const input of inputs) {
    const r = step(state, input);
    state = r.state;
    commands.push(...r.commands);
  }
  return { state, commands };
}

/**
 * Commands that pick a replayed mission up again after a crash:
 * - every attempt in flight is dispatched again, same attempt and msg id (see
 *   the header: deduplicated, so safe); one not yet started gets a fresh start
 *   window from `now`, since no worker could report to a dead orchestrator;
 * - a replan that was requested is requested again (the planner call died);
 * - a mission already final repeats finish and its final event (the shell
 *   skips a mission whose final event is already recorded);
 * - a mission still planning needs its plan: nothing to resume here.
 */
export function resume(state: MissionState, now: number): StepResult {
  const ctx: Ctx = { s: structuredClone(state), out: [], now };
  const s = ctx.s;
  if (isFinal(s)) {
    const outcome = s.outcome!;
    ctx.now = outcome.at;
    finalCommands(ctx, outcome.status, outcome.reason);
    return { state: s, commands: ctx.out };
  }
  for (const id of s.order) {
    const t = s.tasks[id]!;
    const a = currentAttempt(t);
    if (!a) continue;
    if (a.startedAt === null) a.dispatchedAt = now;
    ctx.out.push(dispatchCommand(s, t, a.attempt));
  }
  if (s.status === "replanning" && s.replan?.phase === "requested") {
    ctx.out.push(replanCommand(s));
  }
  return { state: s, commands: ctx.out };
}

// ---------------------------------------------------------------- planning

function onPlanned(ctx: Ctx, input: Extract<MissionInput, { type: "planned" }>): void {
  if ((input.revision ?? 0) > 0) {
    // A recorded mission_planned of a revision is the answer to a replan.
    if (input.plan)
      onReplanResult(ctx, { type: "replan_result", now: input.now, plan: input.plan });
    else onReplanResult(ctx, { type: "replan_result", now: input.now, error: input.error });
    return;
  }
  const { s } = ctx;
  if (s.status !== "planning") {
    ignore(ctx, input, "the mission already has a plan");
    return;
  }
  if (input.error !== undefined) {
    finish(ctx, "failed", `planning failed: ${input.error}`);
    return;
  }
  const v = validatePlan(input.plan);
  if (!v.ok) {
    finish(ctx, "failed", `the plan is invalid: ${v.problems.join("; ")}`);
    return;
  }
  install(ctx, v.plan, 0);
  advance(ctx);
}

function onReplanResult(ctx: Ctx, input: Extract<MissionInput, { type: "replan_result" }>): void {
  const { s } = ctx;
  if (s.status !== "replanning" || s.replan?.phase !== "requested") {
    ignore(ctx, input, "no replan was requested");
    return;
  }
  if (input.error !== undefined) {
    finish(ctx, "failed", `${failureAccount(s.failures)}; replanning failed: ${input.error}`);
    return;
  }
  const completed = s.order.filter((id) => s.tasks[id]!.status === "succeeded");
  const v = validatePlan(input.plan, { completed });
  if (!v.ok) {
    finish(
      ctx,
      "failed",
      `${failureAccount(s.failures)}; the revised plan is invalid: ${v.problems.join("; ")}`,
    );
    return;
  }
  install(ctx, v.plan, s.revision + 1);
  advance(ctx);
}

/** Make `plan` the current plan; succeeded tasks are kept, the rest superseded or reset. */
function install(ctx: Ctx, plan: NormalizedPlan, revision: number): void {
  const { s } = ctx;
  const inPlan = new Set<string>();
  const order: string[] = [];
  for (const spec of planTasks(plan)) {
    inPlan.add(spec.id);
    order.push(spec.id);
    const old = s.tasks[spec.id];
    if (old && old.status === "succeeded") {
      // Kept as done: it never runs again, whatever the revision says about it.
      old.wave = spec.wave;
      old.revision = revision;
      old.inPlan = true;
      continue;
    }
    const { wave: _wave, ...taskSpec } = spec;
    const base = old ? lastAttemptNumber(old) : 0;
    s.tasks[spec.id] = {
      id: spec.id,
      agent: spec.agent,
      wave: spec.wave,
      revision,
      inPlan: true,
      spec: taskSpec,
      status: "pending",
      attemptBase: base,
      maxAttempt: base + spec.max_attempts,
      attempts: old ? old.attempts : [],
      summary: null,
      error: null,
      finishedAt: null,
    };
  }
  for (const id of s.order) {
    if (inPlan.has(id)) continue;
    const t = s.tasks[id]!;
    t.inPlan = false;
    if (t.status !== "succeeded") t.status = "superseded";
    order.push(id);
  }
  if (revision > 0) s.replanHistory.push({ revision, failed: s.failures });
  s.plan = plan;
  s.revision = revision;
  s.order = order;
  s.waves = plan.waves.map((w) => ({
    wave: w.wave,
    taskIds: w.tasks.map((t) => t.id),
    started: false,
    completed: false,
  }));
  s.failures = [];
  s.replan = null;
  s.status = "running";
}

// ---------------------------------------------------------------- task events

function onTaskStarted(ctx: Ctx, input: Extract<MissionInput, { type: "task_started" }>): void {
  const t = ctx.s.tasks[input.task_id];
  if (!t) {
    ignore(ctx, input, `unknown task ${input.task_id}`);
    return;
  }
  const a = currentAttempt(t);
  if (!a) {
    ignore(ctx, input, `task ${t.id} has no attempt in flight (it is ${t.status})`);
    return;
  }
  if (input.attempt !== a.attempt) {
    ignore(
      ctx,
      input,
      input.attempt < a.attempt
        ? `late start of attempt ${input.attempt} of task ${t.id}: attempt ${a.attempt} is current`
        : `attempt ${input.attempt} of task ${t.id} was never dispatched`,
    );
    return;
  }
  const delivery = input.delivery ?? null;
  if (a.startedAt !== null && a.worker === input.worker && a.delivery === delivery) {
    ignore(ctx, input, `duplicate start of attempt ${a.attempt} of task ${t.id}`);
    return;
  }
  // First start, or a redelivery to another replica: the run clock (re)starts.
  a.startedAt = ctx.now;
  a.worker = input.worker;
  a.delivery = delivery;
  t.status = "running";
}

function onTaskResult(ctx: Ctx, input: Extract<MissionInput, { type: "task_result" }>): void {
  const { s } = ctx;
  const t = s.tasks[input.task_id];
  if (!t) {
    ignore(ctx, input, `unknown task ${input.task_id}`);
    return;
  }
  const a = t.attempts.find((x) => x.attempt === input.attempt);
  if (!a) {
    ignore(ctx, input, `attempt ${input.attempt} of task ${t.id} was never dispatched`);
    return;
  }
  if (a.outcome !== null) {
    if (a.outcome === "timed_out" && !a.lateResult && input.result.worker !== ORCHESTRATOR_WORKER) {
      // The work was done (and paid for) even though the orchestrator gave up on it.
      a.lateResult = true;
      addUsage(s, t.agent, input.result.usage);
      ignore(ctx, input, `late result of attempt ${a.attempt} of task ${t.id}: it had timed out`);
      checkTokenBudget(ctx);
    } else {
      ignore(ctx, input, `duplicate result of attempt ${a.attempt} of task ${t.id}`);
    }
    return;
  }
  if (currentAttempt(t) !== a) {
    ignore(ctx, input, `result of attempt ${a.attempt} of task ${t.id}, which is not in flight`);
    return;
  }
  applyResult(ctx, t, a, input.result);
}

/** Record the result of the attempt in flight and move the mission on. */
function applyResult(ctx: Ctx, t: TaskRecord, a: AttemptRecord, result: TaskResult): void {
  const { s } = ctx;
  const timedOut = result.worker === ORCHESTRATOR_WORKER;
  a.finishedAt = ctx.now;
  a.summary = result.summary;
  a.usage = result.usage;
  if (a.worker === null && !timedOut) a.worker = result.worker;
  addUsage(s, t.agent, result.usage);

  if (result.status === "succeeded") {
    a.outcome = "succeeded";
    t.status = "succeeded";
    t.summary = result.summary;
    t.finishedAt = ctx.now;
  } else {
    a.outcome = timedOut ? "timed_out" : "failed";
    a.error = result.error || result.summary || "failed without an error message";
    const retry = s.status === "running" && result.retryable !== false && a.attempt < t.maxAttempt;
    if (retry) {
      t.status = "pending"; // dispatched again as attempt+1 by advance()
    } else {
      t.status = "failed";
      t.error = a.error;
      t.finishedAt = ctx.now;
      s.failures.push({ id: t.id, error: a.error, attempts: t.attempts.length });
    }
  }
  emitWaveCompletions(ctx);
  if (checkTokenBudget(ctx)) return;
  if (t.status === "failed" && s.status === "running") {
    if (s.replansUsed < s.config.maxReplans) {
      s.status = "replanning";
      s.replan = { phase: "draining" };
    } else {
      const after = s.replansUsed ? ` (after ${plural(s.replansUsed, "replan")})` : "";
      finish(ctx, "failed", failureAccount(s.failures) + after);
      return;
    }
  }
  advance(ctx);
}

// ---------------------------------------------------------------- time

function onTick(ctx: Ctx): void {
  const { s, now } = ctx;
  const limit = s.config.budget.time_s;
  if (limit !== undefined && now - s.config.startedAt > limit * 1000) {
    const elapsed = Math.round((now - s.config.startedAt) / 1000);
    finish(ctx, "failed", `budget exceeded: ${elapsed} s elapsed, the time budget is ${limit} s`);
    return;
  }
  // Decide what is overdue first: handling one timeout may dispatch new attempts.
  const due: Array<{ t: TaskRecord; a: AttemptRecord; error: string }> = [];
  for (const id of s.order) {
    const t = s.tasks[id]!;
    const a = currentAttempt(t);
    if (!a) continue;
    if (a.startedAt === null) {
      if (now >= a.dispatchedAt + s.config.startTimeoutS * 1000) {
        due.push({
          t,
          a,
          error:
            `no worker started attempt ${a.attempt} within ${s.config.startTimeoutS} s ` +
            `(is a worker for agent "${t.agent}" running?)`,
        });
      }
    } else if (now >= a.startedAt + (t.spec.timeout_s + s.config.resultGraceS) * 1000) {
      due.push({
        t,
        a,
        error: `attempt ${a.attempt} sent no result within ${t.spec.timeout_s} s of its start (worker ${a.worker})`,
      });
    }
  }
  for (const { t, a, error } of due) {
    if (isFinal(s)) break;
    if (currentAttempt(t) !== a) continue;
    const result: TaskResult = {
      status: "failed",
      summary: `timed out: ${error}`,
      error: `timed out: ${error}`,
      steps: [],
      verification: [],
      usage: { model: null, input_tokens: 0, output_tokens: 0 },
      attempt: a.attempt,
      duration_ms: Math.max(0, now - (a.startedAt ?? a.dispatchedAt)),
      worker: ORCHESTRATOR_WORKER,
    };
    emit(ctx, `${s.config.missionId}.${t.id}.${a.attempt}.timeout`, {
      type: "task_failed",
      task_id: t.id,
      payload: { result },
    });
    ctx.out.push({
      kind: "abort_tasks",
      reason: result.error!,
      tasks: [{ task_id: t.id, agent: t.agent, attempt: a.attempt, worker: a.worker }],
    });
    applyResult(ctx, t, a, result);
  }
}

// ---------------------------------------------------------------- progress

/** Dispatch what is ready, complete the mission, or request the replan once drained. */
function advance(ctx: Ctx): void {
  const { s } = ctx;
  if (s.status === "replanning") {
    if (s.replan?.phase === "draining" && inFlightAttempts(s).length === 0) {
      s.replan = { phase: "requested" };
      s.replansUsed++;
      ctx.out.push(replanCommand(s));
    }
    return;
  }
  if (s.status !== "running") return;

  const succeeded = (id: string) => s.tasks[id]?.status === "succeeded";
  for (const id of s.order) {
    const t = s.tasks[id]!;
    if (!t.inPlan || t.status !== "pending" || !t.spec.depends_on.every(succeeded)) continue;
    const wave = s.waves.find((w) => w.wave === t.wave)!;
    if (!wave.started) {
      wave.started = true;
      emit(ctx, `${s.config.missionId}.r${s.revision}.w${wave.wave}.started`, {
        type: "wave_started",
        task_id: null,
        payload: { wave: wave.wave, task_ids: wave.taskIds },
      });
    }
    dispatch(ctx, t);
  }

  const current = s.order.filter((id) => s.tasks[id]!.inPlan);
  if (current.every(succeeded)) {
    finish(ctx, "completed", "every task succeeded");
    return;
  }
  if (inFlightAttempts(s).length === 0) {
    // Unreachable with a validated plan; fail loudly rather than hang.
    const waiting = current
      .filter((id) => !succeeded(id))
      .map((id) => {
        const t = s.tasks[id]!;
        const missing = t.spec.depends_on.filter((d) => !succeeded(d));
        return `${id} (${t.status}${missing.length ? `, needs ${missing.join(", ")}` : ""})`;
      });
    finish(ctx, "failed", `no task can run: ${waiting.join("; ")}`);
  }
}

function dispatch(ctx: Ctx, t: TaskRecord): void {
  const attempt = lastAttemptNumber(t) + 1;
  t.attempts.push({
    attempt,
    dispatchedAt: ctx.now,
    startedAt: null,
    worker: null,
    delivery: null,
    finishedAt: null,
    outcome: null,
    summary: null,
    error: null,
    usage: null,
    lateResult: false,
  });
  t.status = "dispatched";
  ctx.out.push(dispatchCommand(ctx.s, t, attempt));
}

function dispatchCommand(s: MissionState, t: TaskRecord, attempt: number): MissionCommand {
  const spec = t.spec;
  const inputs: Record<string, string> = {};
  for (const dep of spec.depends_on) inputs[dep] = s.tasks[dep]?.summary ?? "";
  const task: Task = {
    id: t.id,
    agent: t.agent,
    wave: t.wave,
    title: spec.title,
    instructions: spec.instructions,
    depends_on: [...spec.depends_on],
    acceptance: spec.acceptance,
    ...(spec.run ? { run: [...spec.run] } : {}),
    ...(spec.verify ? { verify: [...spec.verify] } : {}),
    inputs,
    timeout_s: spec.timeout_s,
    attempt,
    max_attempts: t.maxAttempt,
  };
  return { kind: "dispatch", msg_id: `${s.config.missionId}.${t.id}.${attempt}`, task };
}

function replanCommand(s: MissionState): MissionCommand {
  const results: TaskOutcome[] = s.order.map((id) => {
    const t = s.tasks[id]!;
    return {
      id: t.id,
      agent: t.agent,
      title: t.spec.title,
      status: t.status,
      summary: t.summary,
      error: t.error,
      attempts: t.attempts.length,
    };
  });
  return {
    kind: "request_replan",
    revision: s.revision + 1,
    plan: structuredClone(s.plan!),
    failed: s.failures.map((f) => ({ ...f })),
    results,
  };
}

function emitWaveCompletions(ctx: Ctx): void {
  const { s } = ctx;
  for (const w of s.waves) {
    if (!w.started || w.completed) continue;
    const tasks = w.taskIds.map((id) => s.tasks[id]!);
    if (!tasks.every((t) => t.status === "succeeded" || t.status === "failed")) continue;
    w.completed = true;
    emit(ctx, `${s.config.missionId}.r${s.revision}.w${w.wave}.completed`, {
      type: "wave_completed",
      task_id: null,
      payload: {
        wave: w.wave,
        succeeded: tasks.filter((t) => t.status === "succeeded").map((t) => t.id),
        failed: tasks.filter((t) => t.status === "failed").map((t) => t.id),
      },
    });
  }
}

// ---------------------------------------------------------------- budgets and the end

/** Fails the mission and returns true when the token budget is exceeded. */
function checkTokenBudget(ctx: Ctx): boolean {
  const { s } = ctx;
  const limit = s.config.budget.tokens;
  const used = s.usage.input_tokens + s.usage.output_tokens;
  if (limit === undefined || used <= limit || isFinal(s)) return false;
  finish(ctx, "failed", `budget exceeded: ${used} tokens used, the token budget is ${limit}`);
  return true;
}

/** Move to a final state: abort what runs, skip what waits, write the report, announce. */
function finish(ctx: Ctx, status: FinalStatus, reason: string, requestedBy?: string): void {
  const { s, now } = ctx;
  const running = inFlightAttempts(s);
  for (const id of s.order) {
    const t = s.tasks[id]!;
    const a = currentAttempt(t);
    if (a) {
      a.outcome = "aborted";
      a.finishedAt = now;
      t.status = "cancelled";
      t.finishedAt = now;
    } else if (t.status === "pending" && t.inPlan) {
      t.status = "skipped";
    }
  }
  s.status = status;
  s.replan = null;
  s.outcome = { status, reason, at: now };
  if (running.length > 0 || status === "cancelled") {
    ctx.out.push({ kind: "abort_tasks", reason: `mission ${status}: ${reason}`, tasks: running });
  }
  finalCommands(ctx, status, reason, requestedBy);
}

function finalCommands(ctx: Ctx, status: FinalStatus, reason: string, requestedBy?: string): void {
  const { s, now } = ctx;
  const summary = summarize(s);
  ctx.out.push({ kind: "finish", status, reason, summary });
  const counts = taskCounts(s);
  const tasks = { total: counts.total, succeeded: counts.succeeded, failed: counts.failed };
  const usage = { input_tokens: s.usage.input_tokens, output_tokens: s.usage.output_tokens };
  const duration_ms = Math.max(0, now - s.config.startedAt);
  const id = `${s.config.missionId}.${status}`;
  if (status === "completed") {
    const waves = s.plan?.waves.length ?? 0;
    const replans = s.replansUsed ? `, after ${plural(s.replansUsed, "replan")}` : "";
    emit(ctx, id, {
      type: "mission_completed",
      task_id: null,
      payload: {
        summary: `${plural(counts.succeeded, "task")} succeeded in ${plural(waves, "wave")}${replans}`,
        tasks,
        duration_ms,
        usage,
        report: s.config.reportPath,
      },
    });
  } else if (status === "failed") {
    emit(ctx, id, {
      type: "mission_failed",
      task_id: null,
      payload: {
        reason,
        failed_tasks: s.failures.map((f) => ({ id: f.id, error: f.error })),
        tasks,
        duration_ms,
        usage,
        report: s.config.reportPath,
      },
    });
  } else {
    emit(ctx, id, {
      type: "mission_cancelled",
      task_id: null,
      payload: { reason, ...(requestedBy ? { requested_by: requestedBy } : {}) },
    });
  }
}

/** "task t3 failed after 3 attempts: <error>", or a list for several. */
function failureAccount(failures: readonly FailedTask[]): string {
  const after = (f: FailedTask) => `after ${plural(f.attempts, "attempt")}: ${f.error}`;
  const [first] = failures;
  if (failures.length === 1 && first) return `task ${first.id} failed ${after(first)}`;
  return `${failures.length} tasks failed: ${failures.map((f) => `${f.id} ${after(f)}`).join("; ")}`;
}

// ---------------------------------------------------------------- small helpers

function emit(ctx: Ctx, id: string, event: EmittedEvent): void {
  ctx.out.push({ kind: "emit", id, timestamp: new Date(ctx.now).toISOString(), event });
}

function ignore(ctx: Ctx, input: MissionInput, reason: string): void {
  ctx.out.push({
    kind: "ignored",
    input: input.type,
    task_id: "task_id" in input ? input.task_id : null,
    attempt: "attempt" in input ? input.attempt : null,
    reason,
  });
}

function addUsage(s: MissionState, agent: string, usage: Usage): void {
  const add = (into: TokenCount) => {
    into.input_tokens += usage.input_tokens;
    into.output_tokens += usage.output_tokens;
  };
  add(s.usage);
  add((s.usage.byAgent[agent] ??= { input_tokens: 0, output_tokens: 0 }));
  add((s.usage.byModel[usage.model ?? "none"] ??= { input_tokens: 0, output_tokens: 0 }));
}

function lastAttemptNumber(t: TaskRecord): number {
  return t.attempts.reduce((max, a) => Math.max(max, a.attempt), t.attemptBase);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
