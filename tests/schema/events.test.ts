import { describe, expect, it } from "vitest";
import {
  agentFromTaskSubject,
  decodeEvent,
  EVENT_TYPES,
  makeEvent,
  SchemaValidationError,
  subjects,
  workerDurable,
} from "../../src/schema/index.ts";

describe("events", () => {
  it("knows the 20 event types of the contract", () => {
    expect(EVENT_TYPES).toEqual([
      "mission_submitted",
      "mission_planned",
      "mission_completed",
      "mission_failed",
      "mission_cancelled",
      "wave_started",
      "wave_completed",
      "task_assigned",
      "task_started",
      "task_progress",
      "task_model_called",
      "task_completed",
      "task_failed",
      "task_merged",
      "task_conflicted",
      "agent_online",
      "agent_heartbeat",
      "agent_offline",
      "approval_requested",
      "approval_resolved",
    ]);
  });

  it("builds, encodes and decodes an event with the envelope fields", () => {
    const e = makeEvent(
      "task_started",
      { mission_id: "m1", task_id: "t1", source: "builder/a1" },
      { attempt: 1, worker: "builder/a1" },
    );
    expect(e).toMatchObject({
      schema: 1,
      type: "task_started",
      target: null,
      correlation_id: null,
    });
    expect(decodeEvent(JSON.stringify(e))).toEqual(e);
  });

  it("refuses an invalid payload with an error naming the field", () => {
    expect(() =>
      makeEvent("task_started", { mission_id: "m1", source: "x" }, { attempt: 0, worker: "w" }),
    ).toThrow(/payload\.attempt/);
  });

  it("refuses an unknown type, bad mission ids and non-JSON", () => {
    expect(() => decodeEvent('{"type":"nope"}')).toThrow(SchemaValidationError);
    expect(() => decodeEvent("not json")).toThrow(/not JSON/);
    expect(() =>
      makeEvent("mission_cancelled", { mission_id: "a.b", source: "cli" }, { reason: "x" }),
    ).toThrow(/mission_id/);
  });
});

describe("subjects", () => {
  it("builds the contract's subjects and validates agent names", () => {
    expect(subjects.tasks("proxy_agent")).toBe("squad.tasks.proxy_agent");
    expect(subjects.status("builder", "b-1")).toBe("squad.status.builder.b-1");
    expect(subjects.dlq("tester")).toBe("squad.dlq.tester");
    expect(workerDurable("tester")).toBe("worker-tester");
    expect(agentFromTaskSubject("squad.tasks.tester")).toBe("tester");
    expect(agentFromTaskSubject("squad.tasks.a.b")).toBeNull();
    expect(() => subjects.tasks("Bad.Name")).toThrow(/invalid agent name/);
    expect(() => subjects.tasks("a>")).toThrow(/invalid agent name/);
  });
});
