import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validatePlan } from "../../src/orchestrator/plan-validation.ts";
import { Plan } from "../../src/schema/index.ts";
import {
  lastMessageText,
  startFakeOpenAI,
  textReply,
  toolCallReply,
  unusedPort,
  type FakeModelServer,
} from "../helpers/fake-openai.ts";
import { REPO_ROOT, runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const DEMO = path.join(REPO_ROOT, "mission-briefs/demo-library.md");
let dir: string;
let noPlanBrief: string;
let fake: FakeModelServer | null = null;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "swarm-plan-test-"));
  noPlanBrief = path.join(dir, "adder.md");
  await writeFile(
    noPlanBrief,
    "---\ntitle: Adder\nagents: [builder, tester]\n---\n# Adder\n\nCreate add.js exporting add(a, b), with a test.\n",
  );
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await fake?.close();
  fake = null;
});

/** `swarm plan` needs no NATS: point NATS_URL at nothing to prove it. */
async function env(extra: Record<string, string | undefined> = {}) {
  return swarmEnv(`nats://127.0.0.1:${await unusedPort()}`, dir, {
    SWARM_PLANNER_MODEL: undefined,
    OPENAI_BASE_URL: undefined,
    OPENAI_API_KEY: undefined,
    ...extra,
  });
}

/** A plan as the model writes it (every field present). */
const modelPlan = {
  strategy: "write it, then test it",
  waves: [
    {
      wave: 1,
      rationale: "code first",
      tasks: [
        {
          id: "write-add",
          agent: "builder",
          title: "Write add.js",
          instructions: "Export add(a, b).",
          depends_on: [],
          acceptance: "add(1, 2) is 3",
          run: [],
          verify: ["node -e \"import('./add.js')\""],
        },
      ],
    },
    {
      wave: 2,
      rationale: "then check",
      tasks: [
        {
          id: "test-add",
          agent: "tester",
          title: "Test add.js",
          instructions: "Write and run a node:test suite.",
          depends_on: ["write-add"],
          acceptance: "node --test passes",
          run: [],
          verify: ["node --test"],
        },
      ],
    },
  ],
  risks: ["none worth naming"],
  success_criteria: ["tests pass"],
};

describe("swarm plan", () => {
  it("shows a brief's explicit plan: waves, tasks with agent, dependencies, run/verify counts", async () => {
    const r = await runSwarm(["plan", DEMO], await env());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("8 tasks in 3 waves; explicit plan from the brief (no model)");
    expect(r.stdout).toMatch(/^Wave 2 +Each module is tested/m);
    expect(r.stdout).toMatch(/^ {2}TASK +AGENT +DEPENDS ON +RUN +VERIFY +TITLE$/m);
    expect(r.stdout).toMatch(/^ {2}scaffold +builder +- +2 +1 +Package skeleton$/m);
    expect(r.stdout).toMatch(
      /^ {2}test-slugify +tester +slugify, scaffold +2 +1 +Tests for slugify$/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}full-suite +tester +test-slugify, test-words, index +1 +2 +Whole test suite$/m,
    );
    expect(r.stdout).toContain("Agents: builder ×4, tester ×3, docs_writer ×1");
  });

  it("--json prints the normalized plan, with every dependency explicit", async () => {
    const r = await runSwarm(["plan", DEMO, "--json"], await env());
    expect(r.code).toBe(0);
    const plan = Plan.parse(JSON.parse(r.stdout));
    expect(validatePlan(plan).ok).toBe(true);
    expect(plan.waves.map((w) => w.tasks.map((t) => t.id))).toEqual([
      ["scaffold", "slugify", "wordcount"],
      ["test-slugify", "test-words", "index"],
      ["full-suite", "api-docs"],
    ]);
    // scaffold omits depends_on in the brief; wave 1 has no previous wave.
    expect(plan.waves[0]!.tasks[0]).toMatchObject({ id: "scaffold", depends_on: [] });
    expect(plan.waves[0]!.tasks.every((t) => t.timeout_s && t.max_attempts)).toBe(true);
  });

  it("reads the brief from stdin when the file is -", async () => {
    const r = await runSwarm(["plan", "-", "--json"], await env(), {
      stdin: await readFile(DEMO, "utf8"),
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(Plan.parse(JSON.parse(r.stdout)).waves.flatMap((w) => w.tasks)).toHaveLength(8);
  });

  it("names stdin when the brief read from it is bad (exit 2)", async () => {
    const r = await runSwarm(["plan", "-"], await env(), { stdin: "---\nagents: [nobody]\n---\n" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/brief/);
  });

  it("asks the planner model when the brief has none (real ChatOpenAI, fake OpenAI server)", async () => {
    fake = await startFakeOpenAI(() =>
      toolCallReply("submit_plan", modelPlan, { input: 700, output: 200 }),
    );
    const e = await env({ SWARM_PLANNER_MODEL: "openai:gpt-4.1", OPENAI_BASE_URL: fake.url });
    const text = await runSwarm(["plan", noPlanBrief], e);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      "2 tasks in 2 waves; planned by openai:gpt-4.1 in 1 attempt, 900 tokens",
    );
    expect(text.stdout).toMatch(/^ {2}test-add +tester +write-add +model +1 +Test add\.js$/m);
    expect(fake.requests[0]!.model).toBe("gpt-4.1");
    expect(JSON.stringify(fake.requests[0]!.messages)).toContain(
      "Create add.js exporting add(a, b)",
    );

    const json = await runSwarm(["plan", noPlanBrief, "--json"], e);
    expect(json.code).toBe(0);
    const plan = Plan.parse(JSON.parse(json.stdout));
    // Empty run lists from the model are dropped: those tasks are the model's work.
    expect(plan.waves[1]!.tasks[0]).toMatchObject({ id: "test-add", depends_on: ["write-add"] });
    expect(plan.waves[1]!.tasks[0]!.run).toBeUndefined();
  });

  it("exits 1 with the problems when the planner gives up", async () => {
    fake = await startFakeOpenAI(() => textReply("I would write the adder first."));
    const r = await runSwarm(
      ["plan", noPlanBrief],
      await env({ SWARM_PLANNER_MODEL: "openai:gpt-4.1", OPENAI_BASE_URL: fake.url }),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/the planner \(openai:gpt-4\.1\) gave up after 3 attempts/);
    expect(r.stderr).toMatch(/made no submit_plan tool call/);
    expect(lastMessageText(fake.requests[2]!)).toMatch(/made no submit_plan tool call/);
  });

  it("exits 2 without a planner model and on a bad brief", async () => {
    const noModel = await runSwarm(["plan", noPlanBrief], await env());
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(
      /has no explicit plan, and no planner model is set: set SWARM_PLANNER_MODEL/,
    );

    const badBrief = path.join(dir, "bad.md");
    await writeFile(badBrief, "---\ntitle: Bad\nagents: [wizard]\n---\n# Bad\n");
    const bad = await runSwarm(["plan", badBrief], await env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid brief .*bad\.md.*wizard/s);

    const missing = await runSwarm(["plan", path.join(dir, "nope.md")], await env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read brief/);
  });

  it("exits 3 when the model server is down", async () => {
    const r = await runSwarm(
      ["plan", noPlanBrief],
      await env({
        SWARM_PLANNER_MODEL: "openai:gpt-4.1",
        OPENAI_BASE_URL: `http://127.0.0.1:${await unusedPort()}/v1`,
      }),
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /model openai:gpt-4\.1 is unavailable at http:\/\/127\.0\.0\.1:\d+\/v1: cannot connect/,
    );
    expect(r.stderr).toMatch(/hint: /);
  });
});
