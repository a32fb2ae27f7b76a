import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { StructuredToolInterface } from "@langchain/core/tools";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Step } from "../../src/schema/result.ts";
import { createAgentTools, STEP_OUTPUT_BYTES, TOOL_NAMES } from "../../src/tools/agent-tools.ts";

let workspace: string;
let steps: Step[];
let tools: Map<string, StructuredToolInterface>;

function makeTools(
  opts: { signal?: AbortSignal; allowed?: string[]; shellTimeoutMs?: number } = {},
) {
  const list = createAgentTools({
    workspace,
    allowed: opts.allowed ?? [...TOOL_NAMES],
    shellTimeoutMs: opts.shellTimeoutMs ?? 10_000,
    signal: opts.signal,
    onStep: (s) => steps.push(Step.parse(s)),
  });
  return new Map(list.map((t) => [t.name, t]));
}

async function call(name: string, args: Record<string, unknown>): Promise<string> {
  const t = tools.get(name);
  if (!t) throw new Error(`no tool ${name}`);
  return String(await t.invoke(args));
}

beforeEach(async () => {
  workspace = await mkdtemp(path.join(os.tmpdir(), "squad-agent-tools-"));
  steps = [];
  tools = makeTools();
});
afterEach(async () => {
  await rm(workspace, { recursive: true, force: true });
});

describe("createAgentTools", () => {
  it("makes exactly the contract's tools, filtered by the roster's list", () => {
    expect([...tools.keys()]).toEqual([
      "run_shell",
      "read_file",
      "write_file",
      "list_files",
      "search_files",
    ]);
    expect([...makeTools({ allowed: ["write_file", "read_file"] }).keys()]).toEqual([
      "read_file",
      "write_file",
    ]);
    expect(() => makeTools({ allowed: ["rm_rf"] })).toThrow(/unknown tool/);
  });

  it("run_shell returns the exit code to the model and records a step", async () => {
    const text = await call("run_shell", { command: "echo hi; exit 3" });
    expect(text).toBe("exit_code: 3\nhi\n");
    expect(steps).toEqual([
      expect.objectContaining({
        tool: "run_shell",
        args: { command: "echo hi; exit 3" },
        ok: false,
        exit_code: 3,
      }),
    ]);
  });

  it("does not let the worker's secrets reach commands", async () => {
    const saved = { key: process.env.OPENAI_API_KEY, pass: process.env.NATS_PASS };
    process.env.OPENAI_API_KEY = "sk-live-do-not-leak-123";
    process.env.NATS_PASS = "nats-password-456";
    try {
      const text = await call("run_shell", { command: "env" });
      expect(text).toMatch(/^exit_code: 0/);
      expect(text).toContain("TERM=dumb");
      expect(text).not.toContain("sk-live-do-not-leak-123");
      expect(text).not.toContain("OPENAI_API_KEY");
      expect(text).not.toContain("nats-password-456");
    } finally {
      if (saved.key === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved.key;
      if (saved.pass === undefined) delete process.env.NATS_PASS;
      else process.env.NATS_PASS = saved.pass;
    }
  });

  it("timeout_s can shorten the task's shell timeout but not extend it", async () => {
    const text = await call("run_shell", { command: "sleep 30", timeout_s: 0.3 });
    expect(text).toMatch(/^timed out after 0s; the command and everything it started were killed/);
    expect(steps[0]).toMatchObject({ ok: false, exit_code: null });

    tools = makeTools({ shellTimeoutMs: 300 });
    const capped = await call("run_shell", { command: "sleep 30", timeout_s: 600 });
    expect(capped).toMatch(/^timed out/);
  });

  it("an aborted task kills the running command", async () => {
    const ctl = new AbortController();
    tools = makeTools({ signal: ctl.signal });
    setTimeout(() => ctl.abort(), 200);
    const text = await call("run_shell", { command: "sleep 30" });
    expect(text).toMatch(/^aborted/);
  });

  it("file tools work and record steps", async () => {
    expect(await call("write_file", { path: "src/a.txt", content: "alpha\nbeta\n" })).toBe(
      "wrote 11 bytes to src/a.txt",
    );
    expect(await readFile(path.join(workspace, "src/a.txt"), "utf8")).toBe("alpha\nbeta\n");
    expect(await call("read_file", { path: "src/a.txt" })).toBe("alpha\nbeta\n");
    expect(await call("list_files", {})).toBe("src/\nsrc/a.txt");
    expect(await call("list_files", { path: null })).toBe("src/\nsrc/a.txt");
    expect(await call("search_files", { pattern: "be.a" })).toBe("src/a.txt:2: beta");
    expect(await call("search_files", { pattern: "gamma", path: "src" })).toBe(
      "no matches for gamma",
    );
    expect(steps.map((s) => [s.tool, s.ok])).toEqual([
      ["write_file", true],
      ["read_file", true],
      ["list_files", true],
      ["list_files", true],
      ["search_files", true],
      ["search_files", true],
    ]);
  });

  it("a refused call is an error text for the model and a failed step, not a crash", async () => {
    const text = await call("read_file", { path: "../../etc/passwd" });
    expect(text).toBe("ERROR: path '../../etc/passwd' leaves the workspace");
    const abs = await call("write_file", { path: "/etc/evil", content: "x" });
    expect(abs).toMatch(/^ERROR: path '\/etc\/evil' is absolute/);
    expect(steps).toMatchObject([
      {
        tool: "read_file",
        ok: false,
        output: "ERROR: path '../../etc/passwd' leaves the workspace",
      },
      { tool: "write_file", ok: false },
    ]);
  });

  it("keeps steps small: output and long arguments are truncated", async () => {
    const content = "y".repeat(20_000);
    await call("write_file", { path: "big.txt", content });
    await call("run_shell", { command: "cat big.txt" });
    const [write, shell] = steps;
    expect(String(write?.args.content).length).toBeLessThan(1200);
    expect(String(write?.args.content)).toMatch(/more chars\]$/);
    expect(Buffer.byteLength(shell?.output ?? "")).toBeLessThan(STEP_OUTPUT_BYTES + 100);
    expect(shell?.output).toMatch(/\[\.\.\. truncated \d+ bytes \.\.\.\]/);
  });
});
