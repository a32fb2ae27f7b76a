import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildDeploySummary,
  readReportFacts,
  summaryJsonLine,
} from "../../src/cli/launcher/deploy-summary.ts";
import { findNatsServerBinary, freePort } from "../../src/cli/launcher/local-nats.ts";
import { checkModelServers, modelsNeeded } from "../../src/cli/launcher/model-preflight.ts";
import { agentsForBrief } from "../../src/cli/launcher/swarm-launcher.ts";
import { InfrastructureError } from "../../src/errors.ts";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { makeEvent } from "../../src/schema/index.ts";
import type { Roster } from "../../src/workers/roster.ts";

const M = "m-20250101-120000-abcd";
const roster: Roster = {
  agents: ["builder", "tester", "docs_writer"].map((name) => ({
    name,
    description: name,
    persona: name,
    tools: ["run_shell"],
    ...(name === "tester" ? { model: "openai:gpt-test" } : {}),
  })),
};
const known = roster.agents.map((a) => a.name);

const briefWithPlan = parseBrief(
  `---
agents: [builder, tester, docs_writer]
plan:
  waves:
    - wave: 1
      tasks:
        - { id: a, agent: tester, title: A, run: ["true"] }
        - { id: b, agent: builder, title: B, instructions: do it }
        - { id: c, agent: docs_writer, title: C, run: [], verify: ["test -f a"] }
---
body`,
  { knownAgents: known },
);

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("agents a brief needs", () => {
  it("are the explicit plan's agents, else the brief's list, else the roster", () => {
    expect(agentsForBrief(briefWithPlan, roster)).toEqual(["tester", "builder", "docs_writer"]);
    expect(agentsForBrief({ plan: null, agents: ["docs_writer"] }, roster)).toEqual([
      "docs_writer",
    ]);
    expect(agentsForBrief({ plan: null, agents: null }, roster)).toEqual(known);
  });
});

describe("model pre-flight", () => {
  it("needs no model for run steps (even none), the agent's model for the rest, and the planner without a plan", () => {
    const env = { SWARM_WORKER_MODEL: "ollama:small" };
    expect(modelsNeeded(briefWithPlan, roster, ["tester", "builder"], env)).toEqual([
      { spec: "ollama:small", who: "agent builder" },
    ]);
    expect(
      modelsNeeded({ plan: null }, roster, ["builder", "tester"], {
        ...env,
        SWARM_PLANNER_MODEL: "ollama:big",
      }),
    ).toEqual([
      { spec: "ollama:big", who: "planner" },
      { spec: "ollama:small", who: "agent builder" },
      { spec: "openai:gpt-test", who: "agent tester" },
    ]);
  });

  it("passes when the server answers (any HTTP status) and names the one that does not", async () => {
    const server = http.createServer((_req, res) => {
      res.statusCode = 401;
      res.end("no");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      await checkModelServers([{ spec: "ollama:m", who: "agent builder" }], {
        OLLAMA_HOST: `127.0.0.1:${port}`,
      });
      const closed = await freePort();
      const err = await checkModelServers([{ spec: "ollama:m", who: "agent builder" }], {
        OLLAMA_HOST: `127.0.0.1:${closed}`,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfrastructureError);
      expect((err as Error).message).toContain(`http://127.0.0.1:${closed} does not answer`);
      expect((err as Error).message).toContain("agent builder (ollama:m)");
    } finally {
      server.close();
    }
  });
});

describe("nats-server binary", () => {
  it("an explicit NATS_SERVER_BIN that is not executable is an error with the install hint", async () => {
    const err = await findNatsServerBinary({ NATS_SERVER_BIN: "/nonexistent", PATH: "" }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).hint).toContain("apt-get install nats-server");
  });

  it("is found on PATH", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "squad-bin-"));
    dirs.push(dir);
    await writeFile(path.join(dir, "nats-server"), "#!/bin/sh\n", { mode: 0o755 });
    expect(await findNatsServerBinary({ PATH: `/nonexistent:${dir}` })).toBe(
      path.join(dir, "nats-server"),
    );
  });
});

describe("deploy summary", () => {
  const observed = {
    tasks: { total: 2, succeeded: 1, failed: 0 },
    usage: { input_tokens: 0, output_tokens: 0 },
    durationMs: 999,
  };

  it("comes from the final event when it has the counts", () => {
    const final = makeEvent(
      "mission_completed",
      { mission_id: M, source: "orchestrator" },
      {
        summary: "ok",
        tasks: { total: 8, succeeded: 8, failed: 0 },
        duration_ms: 4321.6,
        usage: { input_tokens: 5, output_tokens: 7 },
        report: "/ws/reports/x.md",
      },
    );
    const s = buildDeploySummary({
      missionId: M,
      final,
      report: null,
      reportPath: "/ws/reports/x.md",
      observed,
    });
    expect(JSON.parse(summaryJsonLine(s))).toEqual({
      mission_id: M,
      status: "completed",
      tasks: { total: 8, succeeded: 8, failed: 0 },
      duration_ms: 4322,
      report: "/ws/reports/x.md",
      usage: { input_tokens: 5, output_tokens: 7 },
    });
  });

  it("takes a cancelled mission's counts from its JSON report, else from what was seen", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "squad-report-"));
    dirs.push(dir);
    const file = path.join(dir, "r.json");
    await writeFile(
      file,
      JSON.stringify({
        mission_id: M,
        status: "cancelled",
        duration_ms: 1200,
        tasks: { total: 3, succeeded: 1, failed: 0, skipped: 2 },
        usage: { input_tokens: 10, output_tokens: 2, byAgent: {} },
        plan: null,
      }),
    );
    const final = makeEvent(
      "mission_cancelled",
      { mission_id: M, source: "orchestrator" },
      { reason: "interrupted (SIGINT)", requested_by: "deploy-swarm" },
    );
    const report = await readReportFacts(file);
    const s = buildDeploySummary({ missionId: M, final, report, reportPath: null, observed });
    expect(s).toMatchObject({
      status: "cancelled",
      tasks: { total: 3, succeeded: 1, failed: 0 },
      usage: { input_tokens: 10, output_tokens: 2 },
      duration_ms: 1200,
      reason: "interrupted (SIGINT)",
    });
    expect(await readReportFacts(path.join(dir, "missing.json"))).toBeNull();

    const none = buildDeploySummary({
      missionId: M,
      final: null,
      noFinalReason: "interrupted before the mission was submitted",
      report: null,
      reportPath: null,
      observed,
    });
    expect(none).toMatchObject({
      status: "cancelled",
      tasks: observed.tasks,
      duration_ms: 999,
      reason: "interrupted before the mission was submitted",
    });
  });
});
