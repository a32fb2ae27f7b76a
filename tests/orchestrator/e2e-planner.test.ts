/**
 * End to end with the planner: the `swarm orchestrator` process plans briefs
 * that carry no plan with SWARM_PLANNER_MODEL=openai:gpt-test, i.e. the real
 * ChatOpenAI client against a fake OpenAI-compatible server, then runs them
 * on real worker processes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  errorReply,
  lastMessageText,
  startFakeOpenAI,
  textReply,
  toolCallReply,
  type FakeModelServer,
  type FakeRequest,
  type FakeScript,
} from "../helpers/fake-openai.ts";
import type { SwarmProcess } from "../helpers/swarm-process.ts";
import { briefText, countByTask, ofType, startSwarm, type Swarm } from "./e2e-harness.ts";

let script: FakeScript = () => errorReply(400, "no script for this test");
let openai: FakeModelServer;
let swarm: Swarm;
let orch: SwarmProcess;

beforeAll(async () => {
  openai = await startFakeOpenAI((req) => script(req));
  swarm = await startSwarm({
    SWARM_PLANNER_MODEL: "openai:gpt-test",
    OPENAI_BASE_URL: openai.url,
    OPENAI_API_KEY: "sk-test",
  });
  orch = swarm.spawnOrchestrator();
  const workers = [swarm.spawnWorker("builder", { concurrency: 2 }), swarm.spawnWorker("tester")];
  await Promise.all([
    swarm.ready(orch, "orchestrator"),
    ...workers.map((w) => swarm.ready(w, "worker")),
  ]);
});

afterAll(async () => {
  await swarm?.stop();
  await openai?.close();
});

/** A task as a model writes it: every field present. */
function task(id: string, agent: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    agent,
    title: `task ${id}`,
    instructions: `Do ${id}.`,
    depends_on: [],
    acceptance: `${id} is done`,
    run: [],
    verify: [],
    ...extra,
  };
}

function modelPlan(...waves: Array<Array<ReturnType<typeof task>>>) {
  return {
    strategy: "build, then check",
    waves: waves.map((tasks, i) => ({ wave: i + 1, rationale: `wave ${i + 1}`, tasks })),
    risks: [],
    success_criteria: ["the checks pass"],
  };
}

/** Answers the i-th planner request with replies[i]; records nothing else. */
function planner(
  ...replies: Array<ReturnType<typeof toolCallReply> | ReturnType<typeof textReply>>
) {
  const requests: FakeRequest[] = [];
  script = (req) => {
    requests.push(req);
    return replies[requests.length - 1] ?? errorReply(400, "the planner was asked too often");
  };
  return requests;
}

const goodPlan = modelPlan(
  [task("make", "builder", { run: ["echo 41 > n.txt"], verify: ["test -f n.txt"] })],
  [task("check", "tester", { depends_on: ["make"], run: ["grep -q 41 n.txt"] })],
);

describe("the orchestrator's planner (ChatOpenAI against a fake server)", () => {
  it("plans a brief without a plan and runs it", async () => {
    const requests = planner(toolCallReply("submit_plan", goodPlan, { input: 500, output: 120 }));
    const id = await swarm.submit(
      briefText(
        { title: "Planned for me", agents: ["builder", "tester"] },
        "# Number\n\nWrite 41 into n.txt and check it.\n",
      ),
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    expect(requests).toHaveLength(1);
    expect(requests[0]!.model).toBe("gpt-test");
    expect(requests[0]!.body.tool_choice).toEqual({
      type: "function",
      function: { name: "submit_plan" },
    });
    expect(JSON.stringify(requests[0]!.messages)).toContain("Write 41 into n.txt and check it.");

    const planned = ofType(await swarm.events(id), "mission_planned");
    expect(planned).toHaveLength(1);
    expect(planned[0]!.payload).toMatchObject({
      planner: "openai:gpt-test",
      revision: 0,
      title: "Planned for me",
    });
    expect(planned[0]!.payload.plan.waves.map((w) => w.tasks.map((t) => t.id))).toEqual([
      ["make"],
      ["check"],
    ]);
    const { json, md } = await swarm.report(id);
    expect(json).toMatchObject({ planner: "openai:gpt-test", tasks: { total: 2, succeeded: 2 } });
    expect(md).toContain("| Planner | openai:gpt-test |");
  });

  it("sends an invalid plan back with its problems and runs the repaired one", async () => {
    const invalid = modelPlan(
      [task("make", "builder", { run: ["echo 41 > n.txt"], depends_on: ["ghost"] })],
      [task("check", "poet", { run: ["true"] })],
    );
    const requests = planner(
      toolCallReply("submit_plan", invalid),
      toolCallReply("submit_plan", goodPlan),
    );
    const id = await swarm.submit(
      briefText({ title: "Repaired" }, "# Number\n\nWrite 41 into n.txt.\n"),
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    expect(requests).toHaveLength(2);
    const feedback = lastMessageText(requests[1]!);
    expect(feedback).toContain("task make: depends on unknown task ghost");
    expect(feedback).toContain('task check: unknown agent "poet"');
    expect(swarm.dispatchesOf(id).map((d) => d.task)).toEqual(["make", "check"]);
  });

  it("fails the mission naming the problems when the planner keeps answering garbage", async () => {
    const requests = planner(
      textReply("I think you should write some code."),
      toolCallReply("submit_plan", { strategy: "?", waves: [] }),
      toolCallReply("submit_plan", modelPlan([task("a b", "builder")])),
    );
    const id = await swarm.submit(
      briefText({ title: "Hopeless" }, "# Anything\n\nDo something.\n"),
    );
    const final = await swarm.waitFinal(id);
    expect(requests).toHaveLength(3);
    expect(final.type).toBe("mission_failed");
    if (final.type !== "mission_failed") return;
    expect(final.payload.reason).toMatch(/^planning failed: /);
    // The last answer's problems, each named.
    expect(final.payload.reason).toContain("task ids are 1-80 characters");
    expect(swarm.dispatchesOf(id)).toEqual([]);
    expect(lastMessageText(requests[1]!)).toContain("made no submit_plan tool call");
    const { json } = await swarm.report(id);
    expect(json).toMatchObject({ status: "failed", title: "Hopeless", planner: "openai:gpt-test" });
  });

  it("hands the submission back while the planner's server fails, and plans once it answers", async () => {
    // ChatOpenAI retries twice itself; the orchestrator then hands the submission back.
    const requests = planner(
      errorReply(503),
      errorReply(503),
      errorReply(503),
      toolCallReply("submit_plan", goodPlan),
    );
    const id = await swarm.submit(
      briefText({ title: "Patience" }, "# Number\n\nWrite 41 into n.txt.\n"),
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    expect(requests).toHaveLength(4);
    expect(orch.stderr()).toContain("planner unavailable; handed back");
  });

  it("replaces a task that always fails with a revised plan; what succeeded is not redone", async () => {
    const first = modelPlan(
      [
        task("good", "builder", { run: ["echo good >> good.txt"] }),
        task("bad", "builder", { run: ["echo broken; exit 3"], max_attempts: 2 }),
      ],
      [task("after", "tester", { depends_on: ["good", "bad"], run: ["test -f good.txt"] })],
    );
    const revised = modelPlan(
      [
        task("good", "builder", { run: ["echo good >> good.txt"] }),
        task("fixed", "builder", { run: ["echo fixed > fixed.txt"] }),
      ],
      [
        task("after", "tester", {
          depends_on: ["good", "fixed"],
          run: ["test -f fixed.txt", "test $(wc -l < good.txt) -eq 1"],
        }),
      ],
    );
    const requests = planner(
      toolCallReply("submit_plan", first),
      toolCallReply("submit_plan", revised),
    );
    const id = await swarm.submit(
      briefText(
        { title: "Second chance", agents: ["builder", "tester"] },
        "# Fix it\n\nThe brief body the replan must see.\n",
      ),
    );
    const final = await swarm.waitFinal(id);
    expect(final.type).toBe("mission_completed");
    if (final.type !== "mission_completed") return;
    expect(final.payload.summary).toBe("3 tasks succeeded in 2 waves, after 1 replan");
    expect(final.payload.tasks).toEqual({ total: 3, succeeded: 3, failed: 0 });

    // The replan request: the original brief, what failed, what is done.
    expect(requests).toHaveLength(2);
    const replanText = JSON.stringify(requests[1]!.messages);
    expect(replanText).toContain("This is a replan");
    expect(replanText).toContain("The brief body the replan must see.");
    expect(replanText).toContain("- bad: run step 1 exited with code 3");

    const events = await swarm.events(id);
    expect(ofType(events, "mission_planned").map((e) => e.payload.revision)).toEqual([0, 1]);
    expect(countByTask(events, "task_started")).toEqual({ good: 1, bad: 2, fixed: 1, after: 1 });
    expect(countByTask(events, "task_completed")).toEqual({ good: 1, fixed: 1, after: 1 });
    expect(
      swarm
        .dispatchesOf(id)
        .map((d) => `${d.task}#${d.attempt}`)
        .sort(),
    ).toEqual(["after#1", "bad#1", "bad#2", "fixed#1", "good#1"]);
    const { json, md } = await swarm.report(id);
    expect(json.revision).toBe(1);
    expect(json.replans).toEqual([
      {
        revision: 1,
        failed: [
          { id: "bad", error: "run step 1 exited with code 3: echo broken; exit 3", attempts: 2 },
        ],
      },
    ]);
    expect(Object.fromEntries(json.task_results.map((r) => [r.id, r.status]))).toEqual({
      good: "succeeded",
      fixed: "succeeded",
      after: "succeeded",
      bad: "superseded",
    });
    expect(md).toContain("## Replans");
  });
});
