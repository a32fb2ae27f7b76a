/**
 * The bad-input scenario: while a real mission runs, publish the corpus of
 * bad-input-corpus.ts on `squad.tasks.*`, `squad.missions.submit` and
 * `squad.coordination`, then check what became of every message:
 *
 * - each that should be dead-lettered is in SQUAD_DLQ (matched by its
 *   stream and sequence) with a reason;
 * - each well-formed submission of a bad brief ended in mission_failed whose
 *   reason names the problem;
 * - each invalid event on squad.coordination was logged and skipped by the
 *   orchestrator; events about tasks or attempts that do not exist changed
 *   nothing (the mission's report shows only its own workers' results);
 * - each larger than max_payload was refused at publish;
 * - no process of the swarm died or was restarted, and the mission completed
 *   with every task.
 *
 * The mission is held open until the checks are done: one of its tasks waits
 * for a file the scenario writes at the end ("while a real mission runs").
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream } from "@nats-io/jetstream";
import { openJetStreamManager, retryTransient, type NatsConnection } from "../bus/index.ts";
import { reportPaths } from "../config.ts";
import { errorMessage } from "../errors.ts";
import { DlqRecord, parseWith, STREAMS } from "../schema/index.ts";
import {
  badInputCorpus,
  HARMLESS_KIND,
  type BadMessage,
  type Expectation,
} from "./bad-input-corpus.ts";
import { openGate, type Injection } from "./injectors.ts";
import { PATIENT } from "./patient-retry.ts";
import { gateTask, runStepPlan } from "./mission-briefs.ts";
import { runMission, type MissionRunContext, type SwarmProc } from "./mission-run.ts";
import { createPrng } from "./prng.ts";
import { isRunning } from "./processes.ts";
import {
  AGENTS,
  row,
  setup,
  type Scenario,
  type ScenarioOptions,
  type ScenarioRow,
} from "./scenario-row.ts";

interface Sent {
  msg: BadMessage;
  /** Where JetStream stored it, or why the publish was refused. */
  stored: { stream: string; seq: number } | null;
  refused: string | null;
}

export interface BadInputFindings {
  published: number;
  byExpectation: Record<Expectation, number>;
  deadLettered: number;
  missingFromDlq: string[];
  failedMissions: number;
  wrongOrMissingFailures: string[];
  refusedAtPublish: number;
  skippedLogged: number;
  invalidOnCoordination: number;
  forgedInReport: string[];
  deadProcesses: number[];
}

/** Every record in SQUAD_DLQ, keyed `<source stream>:<seq>`. */
async function readDlq(nc: NatsConnection): Promise<Map<string, DlqRecord>> {
  const out = new Map<string, DlqRecord>();
  const jsm = await openJetStreamManager(nc, { check: false });
  const state = (await jsm.streams.info(STREAMS.dlq)).state;
  if (state.messages === 0) return out;
  const consumer = await jetstream(nc).consumers.get(STREAMS.dlq, { opt_start_seq: 1 });
  try {
    let seen = 0;
    while (seen < state.last_seq) {
      const batch = await consumer.fetch({ max_messages: 256, expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seen = m.seq;
        const r = parseWith(DlqRecord, m.json(), "dead-letter record");
        const source = r.subject.startsWith("squad.missions.") ? STREAMS.missions : STREAMS.tasks;
        out.set(`${source}:${r.stream_seq}`, r);
        if (seen >= state.last_seq) break;
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return out;
}

async function publishAll(ctx: MissionRunContext, corpus: BadMessage[]): Promise<Sent[]> {
  const js = jetstream(ctx.observer.nc);
  const sent: Sent[] = [];
  for (const msg of corpus) {
    try {
      const ack = await js.publish(msg.subject, msg.data, { timeout: 10_000 });
      sent.push({ msg, stored: { stream: ack.stream, seq: ack.seq }, refused: null });
    } catch (err) {
      sent.push({ msg, stored: null, refused: errorMessage(err) });
    }
  }
  return sent;
}

/** Poll until `check` is true or `ms` passed; the last answer. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(1000);
  }
}

function countLines(text: string, msg: string): number {
  return text.split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

async function fuzz(
  ctx: MissionRunContext,
  o: { seed: number; random: number; taskIds: string[] },
): Promise<{ findings: BadInputFindings; injections: Injection[] }> {
  const t0 = Date.now();
  try {
    await ctx.observer.waitCompleted(ctx.missionId, 2, 120_000);
    const before: SwarmProc[] = await ctx.swarm();
    const corpus = badInputCorpus({
      prng: createPrng(o.seed),
      random: o.random,
      agents: AGENTS,
      missionId: ctx.missionId,
      taskIds: o.taskIds,
    });
    ctx.log(`publishing ${corpus.length} bad messages`);
    const sent = await publishAll(ctx, corpus);
    ctx.log(`published; checking what became of each`);

    const want = (e: Expectation) => sent.filter((s) => s.msg.expect === e);
    const dlqWanted = [...want("dlq"), ...want("no_consumer")];
    const key = (s: Sent) => `${s.stored?.stream}:${s.stored?.seq}`;
    let dlq = new Map<string, DlqRecord>();
    await eventually(async () => {
      dlq = await retryTransient(() => readDlq(ctx.observer.nc), PATIENT);
      return dlqWanted.every((s) => s.stored && dlq.has(key(s)));
    }, 60_000);
    const missingFromDlq = dlqWanted
      .filter((s) => !s.stored || !dlq.has(key(s)))
      .map(
        (s) => `${s.msg.kind} on ${s.msg.subject}${s.refused ? ` (refused: ${s.refused})` : ""}`,
      );

    const wrongOrMissingFailures: string[] = [];
    let failedMissions = 0;
    for (const s of want("mission_failed")) {
      const final = await ctx.observer.waitFinal(s.msg.missionId!, 60_000);
      const reason = final?.type === "mission_failed" ? final.payload.reason : null;
      if (reason !== null && s.msg.reason!.test(reason)) failedMissions++;
      else
        wrongOrMissingFailures.push(
          `${s.msg.kind}: ${final ? `${final.type}: ${reason ?? ""}` : "no final event"}`,
        );
    }

    const refusedAtPublish = want("too_large").filter((s) => s.refused !== null).length;
    const invalidOnCoordination = want("skipped").filter(
      (s) => s.msg.kind !== HARMLESS_KIND,
    ).length;
    const orchestratorLog = path.join(ctx.workspace, "logs", "orchestrator.log");
    let skippedLogged = 0;
    await eventually(async () => {
      const text = await readFile(orchestratorLog, "utf8");
      skippedLogged = countLines(text, "skipping an invalid message in SQUAD_EVENTS");
      return skippedLogged >= invalidOnCoordination;
    }, 30_000);

    const after = await ctx.swarm();
    const deadProcesses: number[] = [];
    for (const p of before) if (!(await isRunning(p.pid))) deadProcesses.push(p.pid);
    if (after.length !== before.length)
      ctx.log(`swarm had ${before.length} processes, now ${after.length}`);

    return {
      findings: {
        published: sent.length,
        byExpectation: {
          dlq: want("dlq").length,
          mission_failed: want("mission_failed").length,
          skipped: want("skipped").length,
          too_large: want("too_large").length,
          no_consumer: want("no_consumer").length,
        },
        deadLettered: dlqWanted.length - missingFromDlq.length,
        missingFromDlq,
        failedMissions,
        wrongOrMissingFailures,
        refusedAtPublish,
        skippedLogged,
        invalidOnCoordination,
        forgedInReport: [],
        deadProcesses,
      },
      injections: sent.map((s) => ({
        at: Date.now() - t0,
        what: `${s.msg.kind} on ${s.msg.subject}`,
      })),
    };
  } finally {
    // Let the mission finish, whatever happened above.
    await openGate(ctx).catch(() => undefined);
  }
}

export async function runBadInputScenario(
  s: Pick<Scenario, "id" | "title">,
  o: ScenarioOptions,
): Promise<ScenarioRow> {
  const quick = o.size === "quick";
  const tasks = quick ? 8 : 40;
  const random = quick ? 100 : 400;
  const plan = runStepPlan({ tasks, agents: AGENTS, waves: quick ? 4 : 10, stepS: 0.3 });
  plan.waves[0]!.tasks.push(gateTask("tester"));
  const taskIds = plan.waves.flatMap((w) => w.tasks.map((t) => t.id));
  let findings: BadInputFindings | null = null;
  const { run, injected } = await runMission(
    setup(o, {
      title: `Chaos: ${tasks} tasks under a flood of bad input`,
      plan,
      agents: AGENTS,
      replicas: 2,
      timeoutMs: quick ? 240_000 : 600_000,
    }),
    async (ctx) => {
      const r = await fuzz(ctx, { seed: o.seed, random, taskIds });
      findings = r.findings;
      // The report is written when the mission ends: no forged result may be in it.
      await ctx.ended;
      try {
        const report = JSON.parse(
          await readFile(reportPaths(ctx.workspace, ctx.missionId).json, "utf8"),
        ) as { task_results?: Array<{ id: string; result: { worker: string } | null }> };
        r.findings.forgedInReport = (report.task_results ?? [])
          .filter((t) => t.result?.worker.startsWith("ghost/"))
          .map((t) => t.id);
      } catch (err) {
        r.findings.forgedInReport = [`report not readable: ${errorMessage(err)}`];
      }
      return r.injections;
    },
  );
  const f = findings as BadInputFindings | null;
  const problems: string[] = [];
  if (!f) problems.push("the bad input was never published");
  else {
    if (f.missingFromDlq.length)
      problems.push(`not in the DLQ: ${f.missingFromDlq.slice(0, 5).join("; ")}`);
    if (f.wrongOrMissingFailures.length)
      problems.push(`bad briefs not refused as expected: ${f.wrongOrMissingFailures.join("; ")}`);
    if (f.refusedAtPublish !== f.byExpectation.too_large)
      problems.push("a message over max_payload was accepted");
    if (f.skippedLogged < f.invalidOnCoordination)
      problems.push(
        `${f.invalidOnCoordination} invalid events, ${f.skippedLogged} logged as skipped by the orchestrator`,
      );
    if (f.forgedInReport.length)
      problems.push(`forged results in the report: ${f.forgedInReport.join(", ")}`);
    if (f.deadProcesses.length) problems.push(`processes died: ${f.deadProcesses.join(", ")}`);
  }
  if (run.restarts.orchestrator || run.restarts.workers)
    problems.push(
      `restarts: orchestrator ${run.restarts.orchestrator}, workers ${run.restarts.workers}`,
    );
  const by = f?.byExpectation;
  return row(
    s,
    o,
    run,
    `${f?.published ?? 0} bad messages (${random} random from seed ${o.seed}, the rest fixed cases) ` +
      `on squad.tasks.*, squad.missions.submit and squad.coordination`,
    injected,
    {
      notes: f
        ? [
            `dead-lettered with a reason: ${f.deadLettered}/${(by?.dlq ?? 0) + (by?.no_consumer ?? 0)} (${by?.no_consumer} for agents nobody serves, moved by the orchestrator)`,
            `bad briefs failed with the precise reason: ${f.failedMissions}/${by?.mission_failed}`,
            `invalid events skipped with a log line: ${f.skippedLogged}/${f.invalidOnCoordination}; events about unknown tasks or attempts ignored: ${(by?.skipped ?? 0) - f.invalidOnCoordination}`,
            `refused at publish (over max_payload): ${f.refusedAtPublish}/${by?.too_large}`,
            `processes died: ${f.deadProcesses.length}; restarts: ${run.restarts.orchestrator + run.restarts.workers}`,
          ]
        : [],
      problems,
      details: { findings: f },
    },
  );
}
