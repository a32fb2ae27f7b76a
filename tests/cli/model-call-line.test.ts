/**
 * `swarm watch` on a task_model_called (pure): one line with the call, its
 * tokens, duration and what the model asked for; `--agent` and `--type`
 * select it like the task's other events.
 */
import { describe, expect, it } from "vitest";
import { formatEventLine } from "../../src/cli/event-line.ts";
import { createWatchFilter, parseTypeList } from "../../src/cli/watch-filter.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { exampleEvents } from "../helpers/example-events.ts";

const called = exampleEvents().find((e) => e.type === "task_model_called")!;

describe("a model call in swarm watch", () => {
  it("is one line: call, model, tokens, duration, the tools asked for and the reply's start", () => {
    expect(formatEventLine(called, false)).toBe(
      "12:00:00.000 m-20250101-demo task_model_called  t1 model call 1 ollama:qwen2.5:7b 412/38 tokens (1.8s) → write_file: I will write hello.txt.",
    );
    const text = makeEvent(
      "task_model_called",
      { ...called, id: "x2" },
      { ...called.payload, call: 2, tool_calls: [], text: "All\ndone.\n", duration_ms: 90 },
    );
    expect(formatEventLine(text, false)).toMatch(
      / t1 model call 2 ollama:qwen2\.5:7b 412\/38 tokens \(90ms\) → text: All done\.$/,
    );
  });

  it("is selected by --type and by the agent of the worker that reported it", () => {
    expect(parseTypeList("task_model_called,task_progress")).toEqual(
      new Set(["task_model_called", "task_progress"]),
    );
    expect(createWatchFilter({ agent: "builder" }).accepts(called)).toBe(true);
    expect(createWatchFilter({ agent: "tester" }).accepts(called)).toBe(false);
    expect(createWatchFilter({ types: new Set(["task_progress"]) }).accepts(called)).toBe(false);
  });
});
