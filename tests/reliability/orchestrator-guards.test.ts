/**
 * Two guards the bad-input corpus asked for, tested on their own:
 * - tasks on `squad.tasks.<agent>` for an agent nobody serves go to the DLQ
 *   (a work queue would otherwise keep them, unseen, forever);
 * - a result naming an attempt that was never dispatched (the machine
 *   ignores it) does not replace the task's real result in the report.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  connectBus,
  ensureWorkerConsumer,
  provisionStreams,
  type NatsConnection,
  type Publisher,
} from "../../src/bus/index.ts";
import { reportPaths } from "../../src/config.ts";
import { silentLogger } from "../../src/log.ts";
import { foreignReason, sweepForeignTasks } from "../../src/orchestrator/foreign-tasks.ts";
import { createMission } from "../../src/orchestrator/mission-machine.ts";
import { MissionRunner } from "../../src/orchestrator/mission-runner.ts";
import { DlqRecord, makeEvent, STREAMS, type TaskResult } from "../../src/schema/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "guards-test" });
  await provisionStreams(nc);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("tasks for agents nobody serves", () => {
  it("names why a subject has no taker (pure)", () => {
    expect(foreignReason("squad.tasks.builder", ["builder"])).toBeNull();
    expect(foreignReason("squad.tasks.ghost", ["builder", "tester"])).toBe(
      'no agent "ghost" in the roster (builder, tester): no worker will take it',
    );
    expect(foreignReason("squad.tasks.NOT_AN_AGENT", ["builder"])).toMatch(/not an agent name/);
  });

  it("moves them to the DLQ with the reason, and leaves every subject someone may serve", async () => {
    const js = jetstream(nc);
    await ensureWorkerConsumer(nc, "builder");
    await ensureWorkerConsumer(nc, "moonlighter"); // not in the roster, but someone runs it
    const published = {
      ghost: await js.publish("squad.tasks.ghost", "for nobody"),
      ghost2: await js.publish("squad.tasks.ghost", "for nobody either"),
      bad: await js.publish("squad.tasks.NOT_AN_AGENT", new Uint8Array([0xff, 0x00])),
      builder: await js.publish("squad.tasks.builder", "junk the builder will refuse itself"),
      reviewer: await js.publish("squad.tasks.reviewer", "waits for a reviewer to start"),
      moonlighter: await js.publish("squad.tasks.moonlighter", "theirs"),
    };

    const moved = await sweepForeignTasks(nc, {
      roster: ["builder", "tester", "reviewer"],
      log: silentLogger,
    });
    expect(moved).toBe(3);

    const jsm = await jetstreamManager(nc);
    const left = await jsm.streams.info(STREAMS.tasks, { subjects_filter: "squad.tasks.*" });
    expect(left.state.subjects).toEqual({
      "squad.tasks.builder": 1,
      "squad.tasks.reviewer": 1,
      "squad.tasks.moonlighter": 1,
    });
    const records: DlqRecord[] = [];
    for (const seq of [1, 2, 3]) {
      const m = await jsm.streams.getMessage(STREAMS.dlq, { seq });
      records.push(DlqRecord.parse(m!.json()));
    }
    expect(records.map((r) => r.stream_seq).sort()).toEqual(
      [published.ghost.seq, published.ghost2.seq, published.bad.seq].sort(),
    );
    for (const r of records) expect(r.agent).toBe("orchestrator");
    expect(records.find((r) => r.subject === "squad.tasks.ghost")?.reason).toMatch(
      /no agent "ghost" in the roster/,
    );
    expect(records.find((r) => r.subject === "squad.tasks.NOT_AN_AGENT")?.data_base64).toBe(
      Buffer.from([0xff, 0x00]).toString("base64"),
    );
    // A second sweep finds nothing more to do.
    expect(
      await sweepForeignTasks(nc, { roster: ["builder", "tester", "reviewer"], log: silentLogger }),
    ).toBe(0);
  });
});

describe("the report of a mission", () => {
  let workspace: string;
  beforeAll(async () => {
    workspace = await mkdtemp(path.join(os.tmpdir(), "squad-guards-"));
  });
  afterAll(async () => {
    await rm(workspace, { recursive: true, force: true });
  });

  it("shows the result of the attempt that ran, not one naming an attempt never dispatched", async () => {
    const published: string[] = [];
    const publisher: Publisher = {
      async publish(e) {
        published.push(e.type);
        return { seq: published.length, duplicate: false, stream: "TEST" };
      },
    };
    const missionId = "m-guards";
    const runner = new MissionRunner(
      createMission({
        missionId,
        startedAt: Date.now(),
        reportPath: reportPaths(workspace, missionId).md,
        maxReplans: 0,
      }),
      { title: "Guards", sourcePath: null, planner: null, plan: null, brief: null },
      {
        publisher,
        log: silentLogger,
        workspaceRoot: workspace,
        replan: async () => undefined,
        onFinished: () => undefined,
        discardQueued: async () => undefined,
      },
    );
    await runner.enqueue({
      type: "planned",
      now: Date.now(),
      revision: 0,
      plan: {
        strategy: "one task",
        waves: [
          {
            wave: 1,
            rationale: "",
            tasks: [
              {
                id: "t1",
                agent: "builder",
                title: "T1",
                instructions: "x",
                depends_on: [],
                acceptance: "",
                timeout_s: 60,
                max_attempts: 1,
              },
            ],
          },
        ],
        risks: [],
        success_criteria: [],
      },
    });
    expect(published).toContain("task_assigned");
    const result = (attempt: number, worker: string): TaskResult => ({
      status: "succeeded",
      summary: `by ${worker}`,
      steps: [],
      verification: [],
      usage: { model: null, input_tokens: 0, output_tokens: 0 },
      attempt,
      duration_ms: 5,
      worker,
    });
    const completed = (attempt: number, worker: string) =>
      makeEvent(
        "task_completed",
        { mission_id: missionId, task_id: "t1", source: worker },
        { result: result(attempt, worker) },
      );
    const real = completed(1, "builder/w1");
    // The forged one comes after, with a higher attempt: the machine ignores it.
    const forged = completed(99, "ghost/1");
    runner.observe(real, {
      type: "task_result",
      now: Date.now(),
      task_id: "t1",
      attempt: 1,
      result: real.payload.result,
    });
    runner.observe(forged, {
      type: "task_result",
      now: Date.now(),
      task_id: "t1",
      attempt: 99,
      result: forged.payload.result,
    });
    await runner.idle();
    expect(runner.finished).toBe(true);
    const json = JSON.parse(await readFile(reportPaths(workspace, missionId).json, "utf8")) as {
      task_results: Array<{ id: string; result: { worker: string } | null }>;
    };
    expect(json.task_results.find((t) => t.id === "t1")?.result?.worker).toBe("builder/w1");
  });
});
