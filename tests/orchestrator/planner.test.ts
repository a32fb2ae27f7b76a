import { ChatOpenAI } from "@langchain/openai";
import { afterEach, describe, expect, it } from "vitest";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { planFromBrief, planMission, type PlannerAgent } from "../../src/orchestrator/planner.ts";
import {
  errorReply,
  lastMessageText,
  sequence,
  startFakeOpenAI,
  textReply,
  toolCallReply,
  type FakeModelServer,
  type FakeRequest,
} from "../helpers/fake-openai.ts";

const roster: PlannerAgent[] = [
  { name: "builder", description: "Writes and changes code with shell and file tools." },
  { name: "tester", description: "Runs test suites and reports failures precisely." },
  { name: "poet", description: "Writes verse. Not for this mission." },
];

const brief = parseBrief(
  "---\nagents: [builder, tester]\nbudget: { tokens: 90000 }\n---\n# Adder\n\nCreate src/add.js exporting add(a, b), with a test.\n",
  { sourcePath: "adder.md", knownAgents: roster.map((a) => a.name) },
);

/** A plan as a model writes it: every field present, run/verify possibly empty. */
function modelPlan(tasks2: Array<Record<string, unknown>> = []) {
  const task = (id: string, agent: string, extra: Record<string, unknown> = {}) => ({
    id,
    agent,
    title: `do ${id}`,
    instructions: `Do ${id}.`,
    depends_on: [],
    acceptance: `${id} is done`,
    run: [],
    verify: [],
    ...extra,
  });
  return {
    strategy: "write, then test",
    waves: [
      {
        wave: 1,
        rationale: "code first",
        tasks: [task("t1", "builder", { verify: ["test -f src/add.js"] })],
      },
      {
        wave: 2,
        rationale: "then check",
        tasks: [task("t2", "tester", { depends_on: ["t1"], verify: ["node --test"] }), ...tasks2],
      },
    ],
    risks: ["none"],
    success_criteria: ["tests pass"],
  };
}

let fake: FakeModelServer | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

function modelFor(server: FakeModelServer) {
  return new ChatOpenAI({
    model: "gpt-4.1",
    apiKey: "test",
    configuration: { baseURL: server.url },
    maxRetries: 0,
  });
}

function allText(req: FakeRequest): string {
  return req.messages
    .map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content)))
    .join("\n");
}

describe("planMission (real ChatOpenAI against the fake OpenAI server)", () => {
  it("returns a valid, normalized plan from a submit_plan tool call", async () => {
    fake = await startFakeOpenAI(
      sequence(toolCallReply("submit_plan", modelPlan(), { input: 900, output: 300 })),
    );
    const r = await planMission({ model: modelFor(fake), brief, agents: roster });
    expect(r).toMatchObject({
      ok: true,
      attempts: 1,
      usage: { input_tokens: 900, output_tokens: 300 },
    });
    if (!r.ok) return;
    const [t1, t2] = r.plan.waves.flatMap((w) => w.tasks);
    expect(t1).toMatchObject({
      id: "t1",
      agent: "builder",
      depends_on: [],
      verify: ["test -f src/add.js"],
      timeout_s: 600,
    });
    // An empty `run` from the model must not turn a task into a run-only task with nothing to run.
    expect(t1!.run).toBeUndefined();
    expect(t2).toMatchObject({ id: "t2", depends_on: ["t1"], max_attempts: 3 });

    const req = fake.requests[0]!;
    // Forced function call with the plan schema; the agent names are an enum of the allowed ones.
    expect(req.body.tool_choice).toEqual({ type: "function", function: { name: "submit_plan" } });
    const fn = (req.tools[0] as { function: { name: string; parameters: Record<string, unknown> } })
      .function;
    expect(fn.name).toBe("submit_plan");
    expect(JSON.stringify(fn.parameters)).toContain('"enum":["builder","tester"]');
    // Strict-structured-output friendly: every field required, nothing extra allowed.
    expect(fn.parameters).toMatchObject({
      required: ["strategy", "waves", "risks", "success_criteria"],
      additionalProperties: false,
    });
    // The prompt carries the rules, the brief and the allowed agents' descriptions only.
    const text = allText(req);
    expect(text).toContain("verify holds shell commands");
    expect(text).toContain("Create src/add.js exporting add(a, b)");
    expect(text).toContain("- tester: Runs test suites");
    expect(text).not.toContain("poet");
    expect(text).toContain("at most 90000 model tokens");
  });

  it("sends an invalid plan back with the validation errors and accepts the repaired one", async () => {
    const broken = modelPlan([
      {
        id: "t3",
        agent: "tester",
        title: "x",
        instructions: "x",
        depends_on: ["t9"],
        acceptance: "",
        run: [],
        verify: [],
      },
    ]);
    fake = await startFakeOpenAI(
      sequence(
        toolCallReply("submit_plan", broken, { input: 100, output: 50 }),
        toolCallReply("submit_plan", modelPlan(), { input: 200, output: 60 }),
      ),
    );
    const r = await planMission({ model: modelFor(fake), brief, agents: roster });
    expect(r).toMatchObject({
      ok: true,
      attempts: 2,
      usage: { input_tokens: 300, output_tokens: 110 },
    });
    expect(fake.requests).toHaveLength(2);
    const second = lastMessageText(fake.requests[1]!);
    expect(second).toContain("That plan cannot be used");
    expect(second).toContain("task t3: depends on unknown task t9");
    // The model also sees what it sent before.
    expect(allText(fake.requests[1]!)).toContain('"depends_on":["t9"]');
  });

  it("gives up after maxRepairs with the problems of the last answer", async () => {
    const garbage = {
      strategy: "hmm",
      waves: [{ wave: 2, rationale: "", tasks: [{ id: "a b", agent: "poet" }] }],
    };
    fake = await startFakeOpenAI(() => toolCallReply("submit_plan", garbage));
    const r = await planMission({ model: modelFor(fake), brief, agents: roster, maxRepairs: 2 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.attempts).toBe(3);
    expect(fake.requests).toHaveLength(3);
    expect(r.problems.join("\n")).toMatch(/task ids are 1-80 characters/);
    expect(r.problems.join("\n")).toMatch(/title: /);
  });

  it("reports a reply without any tool call as a problem, not a crash", async () => {
    fake = await startFakeOpenAI(() =>
      textReply("I would start by writing the adder, then test it."),
    );
    const r = await planMission({ model: modelFor(fake), brief, agents: roster, maxRepairs: 1 });
    expect(r).toMatchObject({ ok: false, attempts: 2 });
    if (r.ok) return;
    expect(r.problems).toEqual([
      'the reply made no submit_plan tool call; it said: "I would start by writing the adder, then test it."',
    ]);
    expect(lastMessageText(fake.requests[1]!)).toContain("made no submit_plan tool call");
  });

  it("plans a revision from the results so far, depending on work already done", async () => {
    const revision = {
      strategy: "retry the tests with a fixed runner",
      waves: [
        {
          wave: 1,
          rationale: "",
          tasks: [
            {
              id: "t2",
              agent: "tester",
              title: "test again",
              instructions: "Use node --test.",
              depends_on: ["t1"],
              acceptance: "",
              run: [],
              verify: ["node --test"],
            },
          ],
        },
      ],
      risks: [],
      success_criteria: [],
    };
    fake = await startFakeOpenAI(sequence(toolCallReply("submit_plan", revision)));
    const r = await planMission({
      model: modelFor(fake),
      brief,
      agents: roster,
      previous: {
        plan: {
          strategy: "write, then test",
          waves: [
            {
              wave: 1,
              tasks: [
                { id: "t1", title: "write" },
                { id: "t2", title: "test" },
              ],
            },
          ],
        },
        results: [
          {
            id: "t1",
            agent: "builder",
            title: "write",
            status: "succeeded",
            summary: "wrote src/add.js",
            attempts: 1,
          },
          {
            id: "t2",
            agent: "tester",
            title: "test",
            status: "failed",
            error: "jest: command not found",
            attempts: 3,
          },
        ],
        failed: [{ id: "t2", error: "jest: command not found" }],
      },
    });
    expect(r.ok).toBe(true);
    const text = allText(fake.requests[0]!);
    expect(text).toContain("This is a replan");
    expect(text).toContain("- t2: jest: command not found");
    expect(text).toContain('- t1 "write" (builder): succeeded, 1 attempt: wrote src/add.js');
  });

  it("reads a JSON reply with the jsonSchema method", async () => {
    fake = await startFakeOpenAI(
      sequence(textReply(JSON.stringify(modelPlan())), textReply("not json at all")),
    );
    const ok = await planMission({
      model: modelFor(fake),
      brief,
      agents: roster,
      method: "jsonSchema",
      maxRepairs: 0,
    });
    expect(ok).toMatchObject({ ok: true, attempts: 1 });
    const format = fake.requests[0]!.body.response_format as {
      type: string;
      json_schema: { name: string };
    };
    expect(format.type).toBe("json_schema");
    expect(format.json_schema.name).toBe("submit_plan");
    const bad = await planMission({
      model: modelFor(fake),
      brief,
      agents: roster,
      method: "jsonSchema",
      maxRepairs: 0,
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problems[0]).toMatch(/^the reply is not valid JSON/);
  });

  it("lets a failed model call through as an error, for the caller to classify", async () => {
    fake = await startFakeOpenAI(sequence(errorReply(500)));
    await expect(planMission({ model: modelFor(fake), brief, agents: roster })).rejects.toThrow(
      /500/,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it("does not call the model when no agent is available", async () => {
    const r = await planMission({
      model: new ChatOpenAI({
        model: "gpt-4.1",
        apiKey: "test",
        configuration: { baseURL: "http://127.0.0.1:9/v1" },
        maxRetries: 0,
      }),
      brief,
      agents: [{ name: "poet", description: "" }],
    });
    expect(r).toMatchObject({ ok: false, attempts: 0 });
    if (!r.ok) expect(r.problems[0]).toMatch(/agent "builder", which is not in the roster/);
  });
});

describe("planFromBrief", () => {
  it("uses the brief's explicit plan without a model, and refuses a brief without one", () => {
    const explicit = parseBrief(
      '---\nplan:\n  waves:\n    - wave: 1\n      tasks:\n        - { id: t1, agent: builder, title: hi, run: ["echo hi"] }\n---\n',
    );
    const r = planFromBrief(explicit, { agents: ["builder"] });
    expect(r).toMatchObject({ ok: true, attempts: 0 });
    expect(planFromBrief(explicit, { agents: ["tester"] })).toMatchObject({
      ok: false,
      problems: ['task t1: unknown agent "builder" (allowed agents: tester)'],
    });
    expect(planFromBrief(brief)).toMatchObject({
      ok: false,
      problems: ["the brief has no explicit plan"],
    });
  });
});
