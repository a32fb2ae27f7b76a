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
 *   task_merged    {task_id, attempt, merged, onto, head}   the merge queue took the commit
 *   task_conflicted {task_id, attempt, reason, files, error} it could not
 *   tick           {}                         periodic: timeouts and the time budget
 *   cancel         {reason, requested_by?}
 *   replan_result  {plan | error}             answer to a request_replan
 *
 * Commands, which the shell executes in order:
 *   dispatch        publish task_assigned for one attempt (msg id <mission>.<task>.<attempt>)
 *   integrate       hand a succeeded attempt's commit to the merge queue
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
 * - Git workspaces (a mission planned with `workspace.base`): every attempt
 *   is dispatched with `task.base` = the mission branch's head. A succeeded
 *   result with `changes` puts the task in `merging` and emits `integrate`;
 *   it counts as succeeded (dependents start, from the new head) only on
 *   task_merged, whose `head` becomes the head. task_conflicted, or a
 *   task_merged onto another head than the current one, is a failed attempt:
 *   retried on the new head, then the replan path (its files go to the
 *   planner). A succeeded result without changes counts at once. The final
 *   events carry the head. A mission without a workspace works as before.
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
 *
 * Cost: a step copies only what its input changes (see `Ctx`) and looks only
 * at the tasks it can affect (a finished task's dependents, via an index of
 * the plan; counts kept in the state instead of scans). What stays O(tasks)
 * per step: the copy of the `tasks` array when a record changes (a copy of
 * references: about 2 µs for a thousand tasks), and a tick's pass
 * over the tasks, which comes at a fixed rate, not per task. Installing a plan
 * and finishing are O(tasks), once each.
 */
import type { TaskResult, Usage } from "../schema/result.ts";
import type { Task } from "../schema/task.ts";
import { truncateText } from "../tools/truncate.ts";
import { planTasks, validatePlan, type NormalizedPlan } from "./plan-validation.ts";
import {
  ORCHESTRATOR_WORKER,
  currentAttempt,
  inFlightAttempts,
  isFinal,
  isInFlight,
  summarize,
  taskOf,
  taskCounts,
  type AttemptRecord,
  type EmittedEvent,
  type FailedTask,
  type FinalStatus,
  type MissionCommand,
  type MissionInput,
  type MissionState,
  type StepResult,
  type MergeWait,
  type TaskOutcome,
  type TaskRecord,
  type TaskStatus,
  type TokenCount,
  type UsageTotals,
  type WaveRecord,
} from "./mission-state.ts";

export * from "./mission-state.ts";

/**
 * Working context of one step. `s` starts as a shallow copy of the given
 * state: its nested parts are still the given state's, shared, and are read
 * freely but written only through the `edit*` helpers below, which copy a part
 * (and the containers on its path) the first time this step writes it. So a
 * step costs what its input touches, not the size of the mission, and the
 * given state is never modified.
 */
interface Ctx {
  s: MissionState;
  out: MissionCommand[];
  now: number;
  /** Objects this step created (copies): the only nested parts it may write. */
  fresh: Set<object>;
}

function newCtx(state: MissionState, now: number): Ctx {
  const s = { ...state };
  return { s, out: [], now, fresh: new Set<object>() };
}

/** Apply one input. The given state is not modified. */
export function step(state: MissionState, input: MissionInput): StepResult {
  const ctx = newCtx(state, input.now);
  if (isFinal(state)) {
    ignore(ctx, input, `the mission is already ${state.status}`);
    return { state, commands: ctx.out };
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
    case "task_merged":
    case "task_conflicted":
      onIntegrated(ctx, input);
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
    for (const c of r.commands) commands.push(c);
  }
  return { state, commands };
}

/**
 * Commands that pick a replayed mission up again after a crash:
 * - every attempt in flight is dispatched again, same attempt and msg id (see
 *   the header: deduplicated, so safe); one not yet started gets a fresh start
 *   window from `now`, since no worker could report to a dead orchestrator;
 * - every task waiting in the merge queue is handed to it again, in the
 *   order its result came (the queue drops what it already settled);
 * - a replan that was requested is requested again (the planner call died);
 * - a mission already final repeats finish and its final event (the shell
 *   skips a mission whose final event is already recorded);
 * - a mission still planning needs its plan: nothing to resume here.
 */
export function resume(state: MissionState, now: number): StepResult {
  if (isFinal(state)) return repeatFinal(state);
  const ctx = newCtx(state, now);
  const s = ctx.s;
  for (const t of state.tasks) {
    const a = currentAttempt(t);
    if (!a) continue;
    if (a.startedAt === null) editAttempt(ctx, t.id, a.attempt).a.dispatchedAt = now;
    ctx.out.push(dispatchCommand(s, t, a.attempt));
  }
  for (const m of s.merging) ctx.out.push(integrateCommand(taskOf(s, m.task_id)!, m));
  if (s.status === "replanning" && s.replan?.phase === "requested") {
    ctx.out.push(replanCommand(s));
  }
  return { state: s, commands: ctx.out };
}

/**
 * A final mission's finish and final event again, as first produced (same
 * ids and times): for a final event whose publish failed, or that a crash
 * kept from the record.
 */
export function repeatFinal(state: MissionState): StepResult {
  const outcome = state.outcome!;
  const ctx = newCtx(state, outcome.at);
  finalCommands(ctx, outcome.status, outcome.reason);
  return { state: ctx.s, commands: ctx.out };
}

// ---------------------------------------------------------------- copy on write

/** A writable copy of one task record (which must exist), made once per step. */
function editTask(ctx: Ctx, id: string): TaskRecord {
  const { s } = ctx;
  const i = s.taskIndex[id]!;
  const t = s.tasks[i]!;
  if (ctx.fresh.has(t)) return t;
  if (!ctx.fresh.has(s.tasks)) {
    s.tasks = s.tasks.slice();
    ctx.fresh.add(s.tasks);
  }
  const copy = copyTask(t);
  ctx.fresh.add(copy);
  s.tasks[i] = copy;
  return copy;
}

/** A task record with its own attempts (a handful, so cheap). */
function copyTask(t: TaskRecord): TaskRecord {
  return { ...t, attempts: t.attempts.map((a) => ({ ...a })) };
}

/** A writable task record and its attempt numbered `attempt` (which must exist). */
function editAttempt(ctx: Ctx, id: string, attempt: number): { t: TaskRecord; a: AttemptRecord } {
  const t = editTask(ctx, id);
  return { t, a: t.attempts.find((x) => x.attempt === attempt)! };
}

/** A writable wave record; `index` is its position (wave number - 1). */
function editWave(ctx: Ctx, index: number): WaveRecord {
  const { s } = ctx;
  const w = s.waves[index]!;
  if (ctx.fresh.has(w)) return w;
  if (!ctx.fresh.has(s.waves)) {
    s.waves = [...s.waves];
    ctx.fresh.add(s.waves);
  }
  const copy = { ...w };
  ctx.fresh.add(copy);
  s.waves[index] = copy;
  return copy;
}

/** Writable usage totals (their size is the number of agents and models, not of tasks). */
function editUsage(ctx: Ctx): UsageTotals {
  const { s } = ctx;
  if (!ctx.fresh.has(s.usage)) {
    s.usage = { ...s.usage, byAgent: { ...s.usage.byAgent }, byModel: { ...s.usage.byModel } };
    ctx.fresh.add(s.usage);
  }
  return s.usage;
}

/**
 * Change a task's status (`t` writable) and keep the counts that spare a step
 * from scanning all tasks: `inFlight`, `toSucceed` and its wave's `remaining`.
 */
function setStatus(ctx: Ctx, t: TaskRecord, status: TaskStatus): void {
  const { s } = ctx;
  const was = t.status;
  if (was === status) return;
  t.status = status;
  s.inFlight += Number(isInFlight(t)) - Number(was === "dispatched" || was === "running");
  if (!t.inPlan) return;
  s.toSucceed += Number(was === "succeeded") - Number(status === "succeeded");
  const delta = Number(isDone(was)) - Number(isDone(status));
  if (delta !== 0) editWave(ctx, t.wave - 1).remaining += delta;
}

/** A status that counts as the end of a task for its wave. */
function isDone(status: TaskStatus): boolean {
  return status === "succeeded" || status === "failed";
}

/** Recount what `setStatus` keeps, after a plan is installed (once per plan, so O(n) is fine). */
function recount(ctx: Ctx): void {
  const { s } = ctx;
  s.inFlight = 0;
  s.toSucceed = 0;
  for (const t of s.tasks) {
    if (isInFlight(t)) s.inFlight++;
    if (!t.inPlan) continue;
    if (t.status !== "succeeded") s.toSucceed++;
    if (!isDone(t.status)) s.waves[t.wave - 1]!.remaining++;
  }
}

/** Tasks of a plan that depend on each task, in plan order. Derived from the (immutable) plan. */
const dependentsByPlan = new WeakMap<NormalizedPlan, Map<string, string[]>>();

function dependentsOf(plan: NormalizedPlan, id: string): readonly string[] {
  let index = dependentsByPlan.get(plan);
  if (!index) {
    index = new Map();
    for (const t of planTasks(plan)) {
      for (const dep of t.depends_on) {
        const list = index.get(dep);
        if (list) list.push(t.id);
        else index.set(dep, [t.id]);
      }
    }
    dependentsByPlan.set(plan, index);
  }
  return index.get(id) ?? [];
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
  if (input.workspace) {
    ctx.s.workspace = { base: input.workspace.base, head: input.workspace.base };
  }
  install(ctx, v.plan, 0);
  advance(
    ctx,
    ctx.s.tasks.map((t) => t.id),
  );
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
  const completed = s.tasks.filter((t) => t.status === "succeeded").map((t) => t.id);
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
  advance(
    ctx,
    ctx.s.tasks.map((t) => t.id),
  );
}

/** Make `plan` the current plan; succeeded tasks are kept, the rest superseded or reset. */
function install(ctx: Ctx, plan: NormalizedPlan, revision: number): void {
  const { s } = ctx;
  const tasks: TaskRecord[] = [];
  const taskIndex: Record<string, number> = {};
  const add = (t: TaskRecord) => {
    taskIndex[t.id] = tasks.length;
    tasks.push(t);
    ctx.fresh.add(t);
  };
  for (const spec of planTasks(plan)) {
    const old = taskOf(s, spec.id);
    if (old && old.status === "succeeded") {
      // Kept as done: it never runs again, whatever the revision says about it.
      add({ ...copyTask(old), wave: spec.wave, revision, inPlan: true });
      continue;
    }
    const { wave: _wave, ...taskSpec } = spec;
    const base = old ? lastAttemptNumber(old) : 0;
    add({
      id: spec.id,
      agent: spec.agent,
      wave: spec.wave,
      revision,
      inPlan: true,
      spec: taskSpec,
      status: "pending",
      attemptBase: base,
      maxAttempt: base + spec.max_attempts,
      attempts: old ? copyTask(old).attempts : [],
      summary: null,
      error: null,
      finishedAt: null,
      commit: null,
    });
  }
  for (const t of s.tasks) {
    if (Object.hasOwn(taskIndex, t.id)) continue;
    add({
      ...copyTask(t),
      inPlan: false,
      status: t.status === "succeeded" ? t.status : "superseded",
    });
  }
  ctx.fresh.add(tasks);
  s.tasks = tasks;
  s.taskIndex = taskIndex;
  if (revision > 0) s.replanHistory = [...s.replanHistory, { revision, failed: s.failures }];
  s.plan = plan;
  s.revision = revision;
  s.waves = plan.waves.map((w) => ({
    wave: w.wave,
    taskIds: w.tasks.map((t) => t.id),
    started: false,
    completed: false,
    remaining: 0,
  }));
  ctx.fresh.add(s.waves);
  for (const w of s.waves) ctx.fresh.add(w);
  recount(ctx);
  s.failures = [];
  s.replan = null;
  s.status = "running";
}

// ---------------------------------------------------------------- task events

function onTaskStarted(ctx: Ctx, input: Extract<MissionInput, { type: "task_started" }>): void {
  const t = taskOf(ctx.s, input.task_id);
  if (!t) {
    ignore(ctx, input, `unknown task ${input.task_id}`);
    return;
  }
  const current = currentAttempt(t);
  if (!current) {
    ignore(ctx, input, `task ${t.id} has no attempt in flight (it is ${t.status})`);
    return;
  }
  if (input.attempt !== current.attempt) {
    ignore(
      ctx,
      input,
      input.attempt < current.attempt
        ? `late start of attempt ${input.attempt} of task ${t.id}: attempt ${current.attempt} is current`
        : `attempt ${input.attempt} of task ${t.id} was never dispatched`,
    );
    return;
  }
  const delivery = input.delivery ?? null;
  if (
    current.startedAt !== null &&
    current.worker === input.worker &&
    current.delivery === delivery
  ) {
    ignore(ctx, input, `duplicate start of attempt ${current.attempt} of task ${t.id}`);
    return;
  }
  // First start, or a redelivery to another replica: the run clock (re)starts.
  const w = editAttempt(ctx, t.id, current.attempt);
  w.a.startedAt = ctx.now;
  w.a.worker = input.worker;
  w.a.delivery = delivery;
  setStatus(ctx, w.t, "running");
}

function onTaskResult(ctx: Ctx, input: Extract<MissionInput, { type: "task_result" }>): void {
  const t = taskOf(ctx.s, input.task_id);
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
      editAttempt(ctx, t.id, a.attempt).a.lateResult = true;
      addUsage(ctx, t.agent, input.result.usage);
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
  applyResult(ctx, t.id, a.attempt, input.result);
}

/** Record the result of the attempt in flight and move the mission on. */
function applyResult(ctx: Ctx, id: string, attempt: number, result: TaskResult): void {
  const { s } = ctx;
  const { t, a } = editAttempt(ctx, id, attempt);
  const timedOut = result.worker === ORCHESTRATOR_WORKER;
  a.finishedAt = ctx.now;
  a.summary = result.summary;
  a.usage = result.usage;
  if (a.worker === null && !timedOut) a.worker = result.worker;
  addUsage(ctx, t.agent, result.usage);

  if (result.status === "succeeded") {
    a.outcome = "succeeded";
    t.summary = result.summary;
    if (s.workspace && result.changes) {
      // Done only once merged: until then its dependents wait.
      setStatus(ctx, t, "merging");
      const wait = { task_id: t.id, attempt, changes: result.changes };
      s.merging = [...s.merging, wait];
      ctx.out.push(integrateCommand(t, wait));
      checkTokenBudget(ctx);
      return;
    }
    succeed(ctx, t);
  } else {
    a.outcome = timedOut ? "timed_out" : "failed";
    a.error = result.error || result.summary || "failed without an error message";
    failAttempt(ctx, t, a, result.retryable !== false);
  }
  settled(ctx, t);
}

/** A task (writable) is done: its result counts for its dependents. */
function succeed(ctx: Ctx, t: TaskRecord): void {
  setStatus(ctx, t, "succeeded");
  t.finishedAt = ctx.now;
}

/** A failed attempt `a` of `t` (both writable, `a.error` set): retry, or the task fails. */
function failAttempt(
  ctx: Ctx,
  t: TaskRecord,
  a: AttemptRecord,
  retryable: boolean,
  files?: string[],
): void {
  const { s } = ctx;
  const error = a.error ?? "failed";
  if (s.status === "running" && retryable && a.attempt < t.maxAttempt) {
    setStatus(ctx, t, "pending"); // dispatched again as attempt+1 by advance()
    return;
  }
  setStatus(ctx, t, "failed");
  t.error = error;
  t.finishedAt = ctx.now;
  const failed: FailedTask = { id: t.id, error, attempts: t.attempts.length };
  if (files?.length) failed.files = [...files];
  s.failures = [...s.failures, failed];
}

/** After a task's attempt settled (succeeded, retried or failed): waves, budget, replan, next. */
function settled(ctx: Ctx, t: TaskRecord): void {
  const { s } = ctx;
  emitWaveCompletion(ctx, t);
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
  // Only a success or a retry can make a task ready: its dependents, or itself.
  const ready =
    t.status === "succeeded" && s.plan
      ? dependentsOf(s.plan, t.id)
      : t.status === "pending"
        ? [t.id]
        : [];
  advance(ctx, ready);
}

/** task_merged / task_conflicted: the merge queue's answer for a task in `merging`. */
function onIntegrated(
  ctx: Ctx,
  input: Extract<MissionInput, { type: "task_merged" | "task_conflicted" }>,
): void {
  const { s } = ctx;
  const wait = s.merging.find((m) => m.task_id === input.task_id);
  if (!wait || wait.attempt !== input.attempt || !s.workspace) {
    const what = input.type === "task_merged" ? "merge" : "conflict";
    ignore(
      ctx,
      input,
      `${what} of attempt ${input.attempt} of task ${input.task_id}, which is not merging`,
    );
    return;
  }
  s.merging = s.merging.filter((m) => m !== wait);
  const { t, a } = editAttempt(ctx, wait.task_id, wait.attempt);
  a.finishedAt = ctx.now;
  const head = s.workspace.head;
  if (input.type === "task_merged" && input.onto === head) {
    s.workspace = { ...s.workspace, head: input.head };
    t.commit = input.merged;
    succeed(ctx, t);
  } else {
    a.outcome = "conflicted";
    let files: string[] = [];
    if (input.type === "task_conflicted") {
      files = input.files;
      const on = files.length ? ` (${files.join(", ")})` : "";
      a.error = `${input.reason === "conflict" ? "merge conflict" : "verify failed on the merged tree"}${on}: ${input.error}`;
    } else {
      // Never expected (the queue integrates onto the head the events say): a retry keeps the branch right.
      a.error = `merged onto ${input.onto}, but the mission branch is at ${head}`;
    }
    failAttempt(ctx, t, a, true, files);
  }
  settled(ctx, t);
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
  if (s.inFlight === 0) return;
  // Decide what is overdue first: handling one timeout may dispatch new attempts.
  // (One pass over the tasks per tick, not per task: ticks come at a fixed rate.)
  const due: Array<{ id: string; attempt: number; error: string }> = [];
  for (const t of s.tasks) {
    const id = t.id;
    const a = currentAttempt(t);
    if (!a) continue;
    if (a.startedAt === null) {
      if (now >= a.dispatchedAt + s.config.startTimeoutS * 1000) {
        due.push({
          id,
          attempt: a.attempt,
          error:
            `no worker started attempt ${a.attempt} within ${s.config.startTimeoutS} s ` +
            `(is a worker for agent "${t.agent}" running?)`,
        });
      }
    } else if (now >= a.startedAt + (t.spec.timeout_s + s.config.resultGraceS) * 1000) {
      due.push({
        id,
        attempt: a.attempt,
        error: `attempt ${a.attempt} sent no result within ${t.spec.timeout_s} s of its start (worker ${a.worker})`,
      });
    }
  }
  for (const { id, attempt, error } of due) {
    if (isFinal(s)) break;
    const t = taskOf(s, id)!;
    const a = currentAttempt(t);
    if (a?.attempt !== attempt) continue;
    const result: TaskResult = {
      status: "failed",
      summary: `timed out: ${error}`,
      error: `timed out: ${error}`,
      steps: [],
      verification: [],
      usage: { model: null, input_tokens: 0, output_tokens: 0 },
      attempt,
      duration_ms: Math.max(0, now - (a.startedAt ?? a.dispatchedAt)),
      worker: ORCHESTRATOR_WORKER,
    };
    emit(ctx, `${s.config.missionId}.${id}.${attempt}.timeout`, {
      type: "task_failed",
      task_id: id,
      payload: { result },
    });
    ctx.out.push({
      kind: "abort_tasks",
      reason: result.error!,
      tasks: [{ task_id: id, agent: t.agent, attempt, worker: a.worker }],
    });
    applyResult(ctx, id, attempt, result);
  }
}

// ---------------------------------------------------------------- progress

/**
 * Dispatch what is ready among `candidates` (every task that the change
 * being handled can have made ready), complete the mission, or request the
 * replan once drained. Every other pending task was already waiting before
 * this step, so it still is.
 */
function advance(ctx: Ctx, candidates: readonly string[]): void {
  const { s } = ctx;
  if (s.status === "replanning") {
    if (s.replan?.phase === "draining" && s.inFlight === 0 && s.merging.length === 0) {
      s.replan = { phase: "requested" };
      s.replansUsed++;
      ctx.out.push(replanCommand(s));
    }
    return;
  }
  if (s.status !== "running") return;

  const succeeded = (id: string) => taskOf(s, id)?.status === "succeeded";
  for (const id of candidates) {
    const t = taskOf(s, id);
    if (!t?.inPlan || t.status !== "pending" || !t.spec.depends_on.every(succeeded)) continue;
    const index = t.wave - 1;
    const wave = s.waves[index]!;
    if (!wave.started) {
      editWave(ctx, index).started = true;
      emit(ctx, `${s.config.missionId}.r${s.revision}.w${wave.wave}.started`, {
        type: "wave_started",
        task_id: null,
        payload: { wave: wave.wave, task_ids: wave.taskIds },
      });
    }
    dispatch(ctx, editTask(ctx, id));
  }

  if (s.toSucceed === 0) {
    finish(ctx, "completed", "every task succeeded");
    return;
  }
  if (s.inFlight === 0 && s.merging.length === 0) {
    // Unreachable with a validated plan; fail loudly rather than hang.
    const waiting = s.tasks
      .filter((t) => t.inPlan && t.status !== "succeeded")
      .map((t) => {
        const missing = t.spec.depends_on.filter((d) => !succeeded(d));
        return `${t.id} (${t.status}${missing.length ? `, needs ${missing.join(", ")}` : ""})`;
      });
    finish(ctx, "failed", `no task can run: ${waiting.join("; ")}`);
  }
}

/** Dispatch the next attempt of `t` (writable). */
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
  setStatus(ctx, t, "dispatched");
  ctx.out.push(dispatchCommand(ctx.s, t, attempt));
}

/** What one dependency's summary may take in a task's `inputs`, and all of them together. */
export const INPUT_SUMMARY_BYTES = 16 * 1024;
export const INPUTS_TOTAL_BYTES = 256 * 1024;

function dispatchCommand(s: MissionState, t: TaskRecord, attempt: number): MissionCommand {
  const spec = t.spec;
  const inputs: Record<string, string> = {};
  // A summary is a model's final answer, unbounded: capped so a task_assigned stays
  // far below any server's max_payload (and a small model's context) however many deps.
  const each = Math.min(
    INPUT_SUMMARY_BYTES,
    Math.floor(INPUTS_TOTAL_BYTES / Math.max(1, spec.depends_on.length)),
  );
  for (const dep of spec.depends_on) {
    inputs[dep] = truncateText(taskOf(s, dep)?.summary ?? "", each);
  }
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
    ...(s.workspace ? { base: s.workspace.head } : {}),
  };
  return { kind: "dispatch", msg_id: `${s.config.missionId}.${t.id}.${attempt}`, task };
}

function integrateCommand(t: TaskRecord, wait: MergeWait): MissionCommand {
  return {
    kind: "integrate",
    task_id: t.id,
    agent: t.agent,
    attempt: wait.attempt,
    changes: wait.changes,
    verify: [...(t.spec.verify ?? [])],
    timeout_s: t.spec.timeout_s,
  };
}

function replanCommand(s: MissionState): MissionCommand {
  const results: TaskOutcome[] = s.tasks.map((t) => {
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
    failed: s.failures.map((f) => ({ ...f, ...(f.files ? { files: [...f.files] } : {}) })),
    results,
  };
}

/** wave_completed for the wave of `t`, when `t` was the last of it to succeed or fail. */
function emitWaveCompletion(ctx: Ctx, t: TaskRecord): void {
  const { s } = ctx;
  if (!t.inPlan || !isDone(t.status)) return;
  const index = t.wave - 1;
  const w = s.waves[index]!;
  if (!w.started || w.completed || w.remaining > 0) return;
  editWave(ctx, index).completed = true;
  const tasks = w.taskIds.map((id) => taskOf(s, id)!);
  emit(ctx, `${s.config.missionId}.r${s.revision}.w${w.wave}.completed`, {
    type: "wave_completed",
    task_id: null,
    payload: {
      wave: w.wave,
      succeeded: tasks.filter((x) => x.status === "succeeded").map((x) => x.id),
      failed: tasks.filter((x) => x.status === "failed").map((x) => x.id),
    },
  });
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
  for (const t of s.tasks) {
    const a = currentAttempt(t);
    if (a) {
      const w = editAttempt(ctx, t.id, a.attempt);
      w.a.outcome = "aborted";
      w.a.finishedAt = now;
      setStatus(ctx, w.t, "cancelled");
      w.t.finishedAt = now;
    } else if (t.status === "pending" && t.inPlan) {
      setStatus(ctx, editTask(ctx, t.id), "skipped");
    } else if (t.status === "merging") {
      // Its commit never reached the branch: the mission's head leaves it out.
      const w = editTask(ctx, t.id);
      setStatus(ctx, w, "cancelled");
      w.finishedAt = now;
    }
  }
  s.merging = [];
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
  const head = s.workspace ? { head: s.workspace.head } : {};
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
        ...head,
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
        ...head,
      },
    });
  } else {
    emit(ctx, id, {
      type: "mission_cancelled",
      task_id: null,
      payload: { reason, ...(requestedBy ? { requested_by: requestedBy } : {}), ...head },
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

function addUsage(ctx: Ctx, agent: string, usage: Usage): void {
  const totals = editUsage(ctx);
  const add = (into: TokenCount | undefined): TokenCount => ({
    input_tokens: (into?.input_tokens ?? 0) + usage.input_tokens,
    output_tokens: (into?.output_tokens ?? 0) + usage.output_tokens,
  });
  totals.input_tokens += usage.input_tokens;
  totals.output_tokens += usage.output_tokens;
  totals.byAgent[agent] = add(totals.byAgent[agent]);
  const model = usage.model ?? "none";
  totals.byModel[model] = add(totals.byModel[model]);
}

function lastAttemptNumber(t: TaskRecord): number {
  return t.attempts.reduce((max, a) => Math.max(max, a.attempt), t.attemptBase);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
