/**
 * The shared tool set: one set of tool objects serves many tasks, each call
 * taking its task's workspace and `onStep` from the run's runtime context.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Step } from "../../src/schema/result.ts";
import {
  createSharedAgentTools,
  TOOL_NAMES,
  type TaskToolsContext,
} from "../../src/tools/agent-tools.ts";

let spaces: string[];

beforeEach(async () => {
  spaces = await Promise.all(
    [1, 2].map(() => mkdtemp(path.join(os.tmpdir(), "squad-shared-tools-"))),
  );
});
afterEach(async () => {
  await Promise.all(spaces.map((d) => rm(d, { recursive: true, force: true })));
});

function taskContext(workspace: string, steps: Step[]): { context: { tools: TaskToolsContext } } {
  return {
    context: { tools: { workspace, shellTimeoutMs: 10_000, onStep: (s) => steps.push(s) } },
  };
}

describe("createSharedAgentTools", () => {
  it("makes the roster's tools and refuses unknown names", () => {
    expect(createSharedAgentTools(["write_file", "read_file"]).map((t) => t.name)).toEqual([
      "read_file",
      "write_file",
    ]);
    expect(() => createSharedAgentTools(["rm_rf"])).toThrow(/unknown tool/);
  });

  it("confines each call to the workspace of the task whose context it runs in", async () => {
    const tools = new Map(createSharedAgentTools([...TOOL_NAMES]).map((t) => [t.name, t]));
    const write = tools.get("write_file")!;
    const shell = tools.get("run_shell")!;
    const steps: Step[][] = [[], []];
    const ctx = spaces.map((ws, i) => taskContext(ws, steps[i]!));

    await Promise.all([
      write.invoke({ path: "who.txt", content: "first" }, ctx[0]),
      write.invoke({ path: "who.txt", content: "second" }, ctx[1]),
    ]);
    expect(await readFile(path.join(spaces[0]!, "who.txt"), "utf8")).toBe("first");
    expect(await readFile(path.join(spaces[1]!, "who.txt"), "utf8")).toBe("second");

    expect(String(await shell.invoke({ command: "cat who.txt" }, ctx[1]))).toBe(
      "exit_code: 0\nsecond",
    );
    expect(String(await write.invoke({ path: "../escape.txt", content: "x" }, ctx[0]))).toMatch(
      /^ERROR: path '..\/escape.txt' leaves the workspace/,
    );
    expect(steps[0]!.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", true],
      ["write_file", false],
    ]);
    expect(steps[1]!.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", true],
      ["run_shell", true],
    ]);
  });

  it("fails loudly when called without a task context", async () => {
    const [list] = createSharedAgentTools(["list_files"]);
    await expect(list!.invoke({})).rejects.toThrow(/without its task's runtime context/);
  });
});
