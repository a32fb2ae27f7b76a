import { describe, expect, it } from "vitest";
import { BadInputError, exitCodeFor } from "../../src/errors.ts";
import { parseBrief, parseDuration } from "../../src/orchestrator/brief.ts";

const roster = ["builder", "tester", "writer"];

/** The BadInputError message parseBrief throws for `text`. */
function refusal(
  text: string,
  opts: Parameters<typeof parseBrief>[1] = { knownAgents: roster },
): string {
  try {
    parseBrief(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(BadInputError);
    expect(exitCodeFor(e)).toBe(2);
    return (e as Error).message;
  }
  throw new Error("expected the brief to be refused");
}

const explicit = `---
title: Greeting files
agents: [builder, tester]
budget:
  tokens: 50000
  time: 1h30m
workspace: greet
plan:
  strategy: write then check
  waves:
    - wave: 1
      tasks:
        - id: write
          agent: builder
          title: Write hello.txt
          run: ["echo hello > hello.txt"]
          verify: ["test -s hello.txt"]
    - wave: 2
      tasks:
        - id: check
          agent: tester
          title: Check it
          instructions: Check that hello.txt says hello.
---
# Greetings

Write a greeting and check it.
`;

describe("parseBrief", () => {
  it("parses a brief with an explicit plan", () => {
    const b = parseBrief(explicit, { sourcePath: "mission-briefs/greet.md", knownAgents: roster });
    expect(b).toMatchObject({
      title: "Greeting files",
      agents: ["builder", "tester"],
      budget: { tokens: 50000, time_s: 5400 },
      workspace: "greet",
      body: "# Greetings\n\nWrite a greeting and check it.",
      sourcePath: "mission-briefs/greet.md",
    });
    expect(
      b.plan?.waves.map((w) => w.tasks.map((t) => [t.id, t.depends_on, t.max_attempts])),
    ).toEqual([[["write", [], 3]], [["check", ["write"], 3]]]);
    expect(b.plan?.waves[0]!.tasks[0]!.run).toEqual(["echo hello > hello.txt"]);
  });

  it("takes the title from the first heading, then the file name; accepts CRLF and no front matter", () => {
    expect(parseBrief("Some intro\n\n```\n# not a heading\n```\n# Real title #\nbody").title).toBe(
      "Real title",
    );
    expect(parseBrief("just do it", { sourcePath: "/x/briefs/tidy-up.md" }).title).toBe("tidy-up");
    const b = parseBrief("---\r\nagents: [builder]\r\n---\r\n# T\r\nbody\r\n", {
      knownAgents: roster,
    });
    expect([b.title, b.agents, b.plan, b.body]).toEqual(["T", ["builder"], null, "# T\nbody"]);
  });

  it("reports a YAML syntax error at its line in the brief file", () => {
    const text = "---\ntitle: x\nbudget:\n  tokens: [1,\n  time: : 5\n---\nbody\n";
    const msg = refusal(text, { sourcePath: "b.md" });
    expect(msg).toMatch(/^invalid brief b\.md:/);
    // Line 5 of the file is the offending line (line 4 of the YAML, after the opening ---).
    expect(msg).toMatch(/line 5: /);
  });

  it("reports schema errors and unknown keys with their lines", () => {
    const msg = refusal("---\ntitle: x\nbudget:\n  tokens: lots\nowner: me\n---\nbody\n");
    expect(msg).toContain("line 4: budget.tokens: ");
    expect(msg).toContain(
      'line 5: unknown key "owner" (allowed: title, agents, budget, workspace, deliver, plan)',
    );
    expect(refusal("---\n- a\n- b\n---\nbody")).toMatch(
      /line 2: the front matter must be a mapping/,
    );
    expect(refusal("---\ntitle: x\nbody")).toMatch(
      /line 1: the front matter opened with --- is never closed/,
    );
    expect(refusal("---\nbudget: { time: soon }\n---\nbody")).toMatch(
      /line 2: budget\.time: "soon" is not a duration/,
    );
  });

  it("refuses an unknown agent, naming the task and the agent", () => {
    const withPoet = explicit.replace("agent: tester", "agent: poet");
    expect(refusal(withPoet)).toMatch(
      /line 20: plan: task check: unknown agent "poet" \(allowed agents: builder, tester\)/,
    );
    // In the roster but not in the brief's own list.
    const withWriter = explicit.replace("agent: tester", "agent: writer");
    expect(refusal(withWriter)).toMatch(/task check: unknown agent "writer"/);
    // The brief's list itself must come from the roster.
    expect(refusal("---\nagents: [builder, ghost]\n---\nbody")).toMatch(
      /line 2: agents: "ghost" is not in the roster \(known agents: builder, tester, writer\)/,
    );
  });

  it("refuses duplicate ids, missing dependencies and cycles, naming the tasks", () => {
    const dup = explicit.replace("id: check", "id: write");
    expect(refusal(dup)).toMatch(/plan: task write: duplicate id \(used in wave 1 and wave 2\)/);
    const missing = explicit.replace(
      "title: Check it",
      "title: Check it\n          depends_on: [t9]",
    );
    expect(refusal(missing)).toMatch(/line 20: plan: task check: depends on unknown task t9/);
    const cycle = `---
plan:
  waves:
    - wave: 1
      tasks:
        - { id: t1, agent: builder, title: one, instructions: x, depends_on: [t2] }
        - { id: t2, agent: builder, title: two, instructions: x, depends_on: [t1] }
---
`;
    expect(refusal(cycle)).toMatch(/dependency cycle: t1 → t2 → t1/);
  });

  it("refuses an empty brief, binary content and oversized input", () => {
    expect(refusal("---\ntitle: nothing\n---\n  \n")).toMatch(/no body and no plan/);
    expect(refusal("hello\u0000world")).toMatch(/binary file/);
    expect(
      refusal(
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18]).toString(
          "latin1",
        ),
      ),
    ).toMatch(/binary file/);
    expect(refusal("x".repeat(1024 * 1024 + 1))).toMatch(/at most 1 MiB/);
  });
});

describe("parseDuration", () => {
  it("reads common durations", () => {
    expect(
      ["90s", "30m", "1h30m", "2h", "1.5h", "90", "1h 5m 10s"].map((d) => parseDuration(d)),
    ).toEqual([90, 1800, 5400, 7200, 5400, 90, 3910]);
    expect(parseDuration(45)).toBe(45);
    expect([parseDuration("soon"), parseDuration("0s"), parseDuration("-5")]).toEqual([
      null,
      null,
      null,
    ]);
  });
});
