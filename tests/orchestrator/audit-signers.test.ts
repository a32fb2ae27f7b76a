/**
 * The audit with the event guard's verdicts (src/client/audit.ts): the
 * approver shown is the signer's identity, a refused decision is a row of its
 * own that decides nothing, and other refused events are left out.
 */
import { describe, expect, it } from "vitest";
import type { Admission } from "../../src/bus/event-guard.ts";
import type { IdentityRecord } from "../../src/bus/identity.ts";
import { buildAudit } from "../../src/client/audit.ts";
import { taskAgentIn } from "../../src/orchestrator/event-intake.ts";
import { makeEvent, type EventOf, type SquadEvent } from "../../src/schema/index.ts";

const M = "m-audit-1";
const operator: IdentityRecord = {
  name: "operator",
  role: "operator",
  public_key: `U${"B".repeat(55)}`,
};
const builder: IdentityRecord = {
  name: "worker-builder",
  role: "worker",
  agent: "builder",
  public_key: `U${"D".repeat(55)}`,
};
const approvalId = `${M}.t1.1.1`;
const at = (s: number) => `2026-01-01T00:00:0${s}.000Z`;

const requested = makeEvent(
  "approval_requested",
  { mission_id: M, task_id: "t1", source: "builder/w1", timestamp: at(1) },
  {
    approval_id: approvalId,
    agent: "builder",
    worker: "builder/w1",
    command: "rm -rf x",
    reason: "rm",
    timeout_s: 60,
  },
);
const resolved = (by: string, s: number) =>
  makeEvent(
    "approval_resolved",
    { mission_id: M, task_id: "t1", source: "cli", timestamp: at(s) },
    { approval_id: approvalId, decision: "approved", by },
  );
const forgedStep = makeEvent(
  "task_progress",
  { mission_id: M, task_id: "t1", source: "builder/w1", timestamp: at(4) },
  {
    attempt: 1,
    worker: "builder/w1",
    step: {
      tool: "run_shell",
      args: { command: "forged" },
      ok: true,
      exit_code: 0,
      duration_ms: 1,
      output: "",
    },
  },
);

describe("buildAudit with verdicts", () => {
  it("names the signer, marks the refused decision, drops other refused events", () => {
    const events: SquadEvent[] = [
      requested,
      resolved("cli", 2),
      resolved("mallory", 3),
      forgedStep,
    ];
    const admissions: Admission[] = [
      { accept: true, signer: builder },
      { accept: false, reason: 'worker-builder (worker) may not send as source "cli"' },
      { accept: true, signer: operator },
      { accept: false, reason: "unsigned" },
    ];
    const rows = buildAudit(events, M, admissions);
    expect(rows.map((r) => [r.kind, r.decision, r.by, r.refused ?? null])).toEqual([
      ["approval", "approved", "cli", 'worker-builder (worker) may not send as source "cli"'],
      ["approval", "approved", "operator", null],
    ]);
  });

  it("without verdicts (open mode) takes the payload's word", () => {
    const rows = buildAudit([requested, resolved("cli", 2)], M);
    expect(rows).toMatchObject([{ kind: "approval", by: "cli" }]);
    expect(rows[0]).not.toHaveProperty("refused");
  });
});

describe("taskAgentIn", () => {
  const planned = (revision: number, agent: string): EventOf<"mission_planned"> =>
    makeEvent(
      "mission_planned",
      { mission_id: M, source: "orchestrator" },
      {
        title: "t",
        planner: null,
        revision,
        plan: {
          strategy: "",
          waves: [{ wave: 1, rationale: "", tasks: [{ id: "t1", agent, title: "t1" }] }],
        },
      },
    ) as EventOf<"mission_planned">;

  it.each([
    { plans: [planned(0, "builder")], task: "t1", agent: "builder" },
    { plans: [planned(1, "tester"), planned(0, "builder")], task: "t1", agent: "tester" },
    { plans: [planned(0, "builder"), planned(2, "reviewer")], task: "t1", agent: "reviewer" },
    { plans: [planned(0, "builder")], task: "nope", agent: null },
  ])("$task → $agent", ({ plans, task, agent }) => {
    expect(taskAgentIn(plans, task)).toBe(agent);
  });
});
