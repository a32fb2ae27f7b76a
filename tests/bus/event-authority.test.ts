/**
 * Who may send which event: the pure policy (src/bus/event-authority.ts),
 * one row per case, the examples of the contract as the legitimate traffic.
 */
import { describe, expect, it } from "vitest";
import { authorize, approverOf, type AuthorityContext } from "../../src/bus/event-authority.ts";
import type { IdentityRecord } from "../../src/bus/identity.ts";
import { subjectFor } from "../../src/bus/publisher.ts";
import { makeEvent, type EventType, type SquadEvent } from "../../src/schema/index.ts";
import { exampleEvents } from "../helpers/example-events.ts";

const key = (c: string) => `U${c.repeat(55)}`;
const orchestrator: IdentityRecord = {
  name: "orchestrator",
  role: "orchestrator",
  public_key: key("A"),
};
const operator: IdentityRecord = { name: "operator", role: "operator", public_key: key("B") };
const watcher: IdentityRecord = { name: "watcher", role: "watcher", public_key: key("C") };
const builder: IdentityRecord = {
  name: "worker-builder",
  role: "worker",
  agent: "builder",
  public_key: key("D"),
};
const tester: IdentityRecord = {
  name: "worker-tester",
  role: "worker",
  agent: "tester",
  public_key: key("E"),
};

const examples = new Map(exampleEvents().map((e) => [e.type, e]));
const ex = <T extends EventType>(type: T) =>
  examples.get(type)! as Extract<SquadEvent, { type: T }>;
/** A copy with envelope or payload fields changed, validated again. */
function edit<T extends EventType>(
  type: T,
  envelope: Partial<Pick<SquadEvent, "source" | "task_id" | "mission_id">>,
  payload: Record<string, unknown> = {},
): SquadEvent {
  const e = ex(type);
  return makeEvent(type, { ...e, ...envelope }, {
    ...(e.payload as Record<string, unknown>),
    ...payload,
  } as never);
}

/** The legitimate sender of each example (its `source` is that identity's). */
const legit: Record<EventType, IdentityRecord> = {
  mission_submitted: operator,
  mission_planned: orchestrator,
  mission_completed: orchestrator,
  mission_failed: orchestrator,
  mission_cancelled: orchestrator,
  wave_started: orchestrator,
  wave_completed: orchestrator,
  task_assigned: orchestrator,
  task_merged: orchestrator,
  task_conflicted: orchestrator,
  task_started: builder,
  task_progress: builder,
  task_model_called: builder,
  task_completed: builder,
  task_failed: builder,
  agent_online: builder,
  agent_heartbeat: builder,
  agent_offline: builder,
  approval_requested: builder,
  approval_resolved: operator,
};

const builderTask: AuthorityContext = { taskAgent: "builder", claimHolder: "w1" };

describe("every example event from its own sender is accepted", () => {
  it.each([...examples.keys()])("%s", (type) => {
    const event = ex(type);
    const v = authorize({
      event,
      subject: subjectFor(event),
      signer: legit[type],
      context: builderTask,
    });
    expect(v).toEqual({ accept: true });
  });
});

interface Row {
  name: string;
  event: SquadEvent;
  signer: IdentityRecord | null;
  context?: AuthorityContext;
  subject?: string;
  /** null: accepted; else a pattern of the refusal's reason. */
  refused: RegExp | null;
}

const rows: Row[] = [
  // unsigned, watcher
  { name: "unsigned", event: ex("task_completed"), signer: null, refused: /not signed/ },
  {
    name: "a watcher sends nothing",
    event: edit("mission_submitted", { source: "watch" }),
    signer: watcher,
    refused: /watcher/,
  },
  // orchestration events
  ...(
    [
      "task_assigned",
      "wave_started",
      "wave_completed",
      "mission_planned",
      "mission_completed",
      "mission_failed",
    ] as const
  ).map((type): Row => ({
    name: `${type} from a worker that says it is the orchestrator`,
    event: ex(type),
    signer: builder,
    refused: /may not send as source "orchestrator"/,
  })),
  ...(["task_assigned", "wave_completed", "mission_completed"] as const).map((type): Row => ({
    name: `${type} from a worker under its own name`,
    event: edit(type, { source: "builder/w1" }),
    signer: builder,
    refused: /only comes from the orchestrator/,
  })),
  {
    name: "task_assigned from the operator",
    event: edit("task_assigned", { source: "cli" }),
    signer: operator,
    refused: /only comes from the orchestrator/,
  },
  {
    name: "task_assigned on another agent's subject",
    event: ex("task_assigned"),
    signer: orchestrator,
    subject: "squad.tasks.tester",
    refused: /not on squad\.tasks\.builder/,
  },
  // submissions and cancels
  {
    name: "mission_submitted from the orchestrator",
    event: edit("mission_submitted", { source: "orchestrator" }),
    signer: orchestrator,
    refused: null,
  },
  {
    name: "mission_submitted from a worker",
    event: edit("mission_submitted", { source: "builder/w1" }),
    signer: builder,
    refused: /operator or the orchestrator/,
  },
  {
    name: "cancel request from the operator",
    event: edit("mission_cancelled", { source: "cli" }),
    signer: operator,
    refused: null,
  },
  {
    name: "cancel from a worker",
    event: edit("mission_cancelled", { source: "builder/w1" }),
    signer: builder,
    refused: /operator or the orchestrator/,
  },
  {
    name: "an operator posing as the orchestrator",
    event: ex("mission_cancelled"),
    signer: operator,
    refused: /names neither/,
  },
  // task events of another agent
  {
    name: "a tester task's result forged by the builder",
    event: ex("task_completed"),
    signer: builder,
    context: { taskAgent: "tester", claimHolder: "w1" },
    refused: /of agent tester, signed by worker-builder/,
  },
  {
    name: "builder's result signed as tester",
    event: edit("task_completed", { source: "tester/w1" }, {}),
    signer: tester,
    context: { taskAgent: "tester" },
    refused: /result names worker builder\/w1/,
  },
  {
    name: "a result for a task the receiver does not know",
    event: ex("task_completed"),
    signer: builder,
    context: { taskAgent: null },
    refused: /does not know/,
  },
  {
    name: "task_started of another agent",
    event: ex("task_started"),
    signer: builder,
    context: { taskAgent: "tester" },
    refused: /of agent tester/,
  },
  {
    name: "task_progress naming another worker",
    event: edit("task_progress", { source: "builder/w2" }),
    signer: builder,
    context: builderTask,
    refused: /names worker builder\/w1 but comes from builder\/w2/,
  },
  {
    name: "task_model_called of another agent's task",
    event: ex("task_model_called"),
    signer: builder,
    context: { taskAgent: "tester" },
    refused: /task_model_called for task t1 of agent tester, signed by worker-builder/,
  },
  {
    name: "task_model_called signed by another agent's worker as itself",
    event: edit("task_model_called", { source: "tester/w1" }, { worker: "tester/w1" }),
    signer: tester,
    context: builderTask,
    refused: /of agent builder, signed by worker-tester/,
  },
  {
    name: "task_model_called naming another worker",
    event: edit("task_model_called", { source: "builder/w2" }),
    signer: builder,
    context: builderTask,
    refused: /names worker builder\/w1 but comes from builder\/w2/,
  },
  {
    name: "task_model_called from the orchestrator",
    event: edit("task_model_called", { source: "orchestrator" }, { worker: "orchestrator" }),
    signer: orchestrator,
    context: builderTask,
    refused: /only comes from the worker of the task's agent/,
  },
  {
    name: "a worker signing as another agent's source",
    event: ex("task_started"),
    signer: tester,
    refused: /worker-tester sends as "tester\/<instance>"/,
  },
  // claims
  {
    name: "a result from a replica without the claim",
    event: ex("task_completed"),
    signer: builder,
    context: { taskAgent: "builder", claimHolder: "w2" },
    refused: /held by w2/,
  },
  {
    name: "a result for an attempt nobody claimed",
    event: ex("task_failed"),
    signer: builder,
    context: { taskAgent: "builder", claimHolder: null },
    refused: /no replica claimed/,
  },
  {
    name: "a result where the receiver checks no claim",
    event: ex("task_completed"),
    signer: builder,
    context: { taskAgent: "builder" },
    refused: null,
  },
  // the orchestrator's own results
  {
    name: "the orchestrator's task_failed for a timeout",
    event: edit(
      "task_failed",
      { source: "orchestrator" },
      { result: { ...ex("task_failed").payload.result, worker: "orchestrator" } },
    ),
    signer: orchestrator,
    context: builderTask,
    refused: null,
  },
  {
    name: "a task_completed from the orchestrator",
    event: edit(
      "task_completed",
      { source: "orchestrator" },
      { result: { ...ex("task_completed").payload.result, worker: "orchestrator" } },
    ),
    signer: orchestrator,
    refused: /only reports an attempt it timed out/,
  },
  // approvals
  {
    name: "approval granted by a worker",
    event: edit("approval_resolved", { source: "builder/w1" }),
    signer: builder,
    context: { taskAgent: "builder" },
    refused: /only comes from an operator/,
  },
  {
    name: "approval granted by the orchestrator",
    event: edit("approval_resolved", { source: "orchestrator" }),
    signer: orchestrator,
    refused: /only comes from an operator/,
  },
  {
    name: "a worker closing its own request as timed out",
    event: edit(
      "approval_resolved",
      { source: "builder/w1" },
      { decision: "timed_out", by: "builder/w1" },
    ),
    signer: builder,
    context: { taskAgent: "builder" },
    refused: null,
  },
  {
    name: "a worker timing out another agent's request",
    event: edit("approval_resolved", { source: "builder/w1" }, { decision: "timed_out" }),
    signer: builder,
    context: { taskAgent: "tester" },
    refused: /of agent tester/,
  },
  {
    name: "approval_requested for another agent",
    event: edit("approval_requested", { source: "tester/w1" }, { worker: "tester/w1" }),
    signer: tester,
    refused: /names agent builder/,
  },
  // status
  {
    name: "a heartbeat of builder signed by tester",
    event: ex("agent_heartbeat"),
    signer: tester,
    refused: /sends as "tester\/<instance>"/,
  },
  {
    name: "a heartbeat of builder from tester under its own source",
    event: edit("agent_heartbeat", { source: "tester/w1" }),
    signer: tester,
    subject: "squad.status.builder.w1",
    refused: /only comes from worker-builder/,
  },
  {
    name: "a heartbeat on another instance's subject",
    event: ex("agent_heartbeat"),
    signer: builder,
    subject: "squad.status.builder.w2",
    refused: /not on squad\.status\.builder\.w1/,
  },
  {
    name: "a heartbeat naming another instance as source",
    event: edit("agent_offline", { source: "builder/w9" }),
    signer: builder,
    refused: /with source builder\/w9/,
  },
];

describe("authorize", () => {
  it.each(rows)("$name", (row) => {
    const v = authorize({
      event: row.event,
      subject: row.subject ?? subjectFor(row.event),
      signer: row.signer,
      ...(row.context ? { context: row.context } : {}),
    });
    if (row.refused === null) expect(v).toEqual({ accept: true });
    else {
      expect(v.accept).toBe(false);
      expect(v.accept ? "" : v.reason).toMatch(row.refused);
    }
  });
});

describe("approverOf", () => {
  it("names the operator's identity, not the payload's by", () => {
    const forgedBy = edit("approval_resolved", {}, { by: "alice" }) as Extract<
      SquadEvent,
      { type: "approval_resolved" }
    >;
    expect(approverOf(forgedBy, operator)).toBe("operator");
    expect(approverOf(forgedBy, null)).toBe("alice");
  });
});
