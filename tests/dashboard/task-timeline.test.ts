/**
 * A task's timeline in the dashboard's view model (pure): each model call
 * (task_model_called) with its tokens, duration and reply, between the tool
 * steps (task_progress) it led to, live and after the result; a later
 * delivery of the attempt starts over.
 */
import { describe, expect, it } from "vitest";
import { attemptTimeline, createSwarmView } from "../../src/dashboard/swarm-view.ts";
import { makeEvent, type SquadEvent, type Step } from "../../src/schema/index.ts";

const M = "m-timeline";
const W = "coder/w1";
let n = 0;
const at = () => new Date(Date.UTC(2026, 0, 1, 12, 0, 0, ++n)).toISOString();
const env = () => ({ mission_id: M, task_id: "t1", source: W, timestamp: at() });

const step = (tool: string, output = ""): Step => ({
  tool,
  args: { command: tool },
  ok: true,
  exit_code: 0,
  duration_ms: 5,
  output,
});
const started = (delivery = 1) =>
  makeEvent("task_started", env(), { attempt: 1, worker: W, delivery });
const progress = (s: Step) => makeEvent("task_progress", env(), { attempt: 1, worker: W, step: s });
const called = (call: number, stepsBefore: number, tools: string[], text = "") =>
  makeEvent("task_model_called", env(), {
    attempt: 1,
    worker: W,
    call,
    model: "ollama:qwen-test",
    input_tokens: 100 * call,
    output_tokens: 10 * call,
    duration_ms: 250,
    tool_calls: tools,
    text,
    finish_reason: "stop",
    steps_before: stepsBefore,
  });
const completed = (steps: Step[]) =>
  makeEvent("task_completed", env(), {
    result: {
      status: "succeeded",
      summary: "done",
      steps,
      verification: [],
      usage: { model: "ollama:qwen-test", input_tokens: 600, output_tokens: 60 },
      attempt: 1,
      duration_ms: 900,
      worker: W,
    },
  });

function fold(events: SquadEvent[]) {
  const view = createSwarmView();
  for (const e of events) view.apply(e);
  return view;
}

/** The timeline as `model N` / step tools, to read at a glance. */
function readable(view: ReturnType<typeof createSwarmView>): string[] {
  const a = view.task(M, "t1")!.attempts[0]!;
  return a.timeline.map((e) =>
    e.kind === "model" ? `model ${a.model_calls[e.index]!.call}` : a.steps[e.index]!.tool,
  );
}

describe("a task's timeline", () => {
  it("puts each model call before the steps it asked for, live and after the result", () => {
    const hostile = "<img src=x onerror=alert(1)> done";
    const live = [
      started(),
      called(1, 0, ["write_file", "run_shell"]),
      progress(step("write_file")),
      progress(step("run_shell")),
      called(2, 2, ["read_file"]),
      progress(step("read_file")),
      called(3, 3, [], hostile),
    ];
    const view = fold(live);
    expect(readable(view)).toEqual([
      "model 1",
      "write_file",
      "run_shell",
      "model 2",
      "read_file",
      "model 3",
    ]);
    const a = view.task(M, "t1")!.attempts[0]!;
    expect(a.model_calls[2]).toEqual({
      call: 3,
      model: "ollama:qwen-test",
      input_tokens: 300,
      output_tokens: 30,
      duration_ms: 250,
      tool_calls: [],
      // Kept as it came: the page makes a text node of it.
      text: hostile,
      finish_reason: "stop",
      steps_before: 3,
      ended_at: live[6]!.timestamp,
    });

    // The result's steps replace the live ones; the model calls stay where they were.
    view.apply(completed([step("write_file"), step("run_shell"), step("read_file")]));
    expect(readable(view)).toEqual([
      "model 1",
      "write_file",
      "run_shell",
      "model 2",
      "read_file",
      "model 3",
    ]);
    // Folded once: the same events again change nothing.
    for (const e of live) expect(view.apply(e)).toBe(false);
    expect(view.task(M, "t1")!.attempts[0]!.model_calls).toHaveLength(3);
  });

  it("a run-only attempt has steps alone; a later delivery of an attempt starts over", () => {
    const runOnly = fold([started(), progress(step("run_shell")), progress(step("run_shell"))]);
    expect(readable(runOnly)).toEqual(["run_shell", "run_shell"]);

    const view = fold([
      started(1),
      called(1, 0, ["write_file"]),
      progress(step("write_file")),
      // The replica died; JetStream redelivered the attempt to another one.
      started(2),
      called(1, 0, ["list_files"]),
      progress(step("list_files")),
    ]);
    expect(readable(view)).toEqual(["model 1", "list_files"]);
    expect(view.task(M, "t1")!.attempts[0]!.model_calls[0]!.tool_calls).toEqual(["list_files"]);
  });

  it("orders calls by number, and puts one past the last step (a cut result) at the end", () => {
    const steps = [step("a"), step("b")];
    expect(
      attemptTimeline(steps, [
        { call: 3, steps_before: 9 },
        { call: 1, steps_before: 0 },
        { call: 2, steps_before: 1 },
      ]),
    ).toEqual([
      { kind: "model", index: 1 },
      { kind: "step", index: 0 },
      { kind: "model", index: 2 },
      { kind: "step", index: 1 },
      { kind: "model", index: 0 },
    ]);
    expect(attemptTimeline([], [])).toEqual([]);
  });
});
