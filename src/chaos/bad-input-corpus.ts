/**
 * The bad-input corpus: messages nobody should ever publish, for the three
 * subjects a client can write to. A fixed list of nasty cases, and a seeded
 * random part (random bytes, random JSON, valid events broken by one
 * mutation), so a run can be repeated from its seed.
 *
 * Each message says what must become of it:
 *   dlq             a worker (squad.tasks.<agent>) or the orchestrator
 *                   (squad.missions.submit) moves it to SQUAD_DLQ, with a reason
 *   mission_failed  a well-formed submission of a bad brief: the mission
 *                   fails at once, and its reason matches `reason`
 *   skipped         squad.coordination: every reader logs it and skips it
 *                   (an invalid event), or the orchestrator ignores it (an
 *                   event about a task or attempt that does not exist)
 *   too_large       the server's max_payload refuses it at publish
 *   no_consumer     on squad.tasks.<agent> of an agent not in the roster:
 *                   the orchestrator moves it to SQUAD_DLQ
 */
import { makeEvent, type SquadEvent } from "../schema/index.ts";
import { BAD_BRIEFS } from "./bad-briefs.ts";
import type { Prng } from "./prng.ts";

export type Expectation = "dlq" | "mission_failed" | "skipped" | "too_large" | "no_consumer";

export interface BadMessage {
  /** What it is, e.g. "random bytes (312 B)". */
  kind: string;
  subject: string;
  data: Uint8Array;
  expect: Expectation;
  /** mission_failed: the mission id it carries, and what its reason must say. */
  missionId?: string;
  reason?: RegExp;
}

export interface CorpusOptions {
  prng: Prng;
  /** Random messages on top of the fixed cases. */
  random: number;
  /** Agents with running workers (their subjects get the task junk). */
  agents: readonly string[];
  /** The real mission running meanwhile: events naming it must not disturb it. */
  missionId: string;
  /** Its task ids. */
  taskIds: readonly string[];
}

const enc = (s: string) => new TextEncoder().encode(s);
const json = (v: unknown) => enc(JSON.stringify(v));
/** 1 MiB: nats-server's default max_payload. */
const MAX_PAYLOAD = 1024 * 1024;

function validTask(agent: string, id = "t-fuzz") {
  return {
    id,
    agent,
    wave: 1,
    title: "a task nobody dispatched",
    instructions: "never run this",
    depends_on: [],
    acceptance: "",
    run: ["false"],
    inputs: {},
    timeout_s: 5,
    attempt: 1,
    max_attempts: 1,
  };
}

/** Fixed, so that a seed gives the same bytes on every run. */
const STAMP = "2026-01-01T00:00:00.000Z";
let ids: Prng | null = null;
/** An event id drawn from the corpus's generator. */
function nextId(): string {
  return `fuzz-${ids!.int(2 ** 31).toString(16)}-${ids!.int(2 ** 31).toString(16)}`;
}

function envelope(type: string, payload: unknown, extra: Record<string, unknown> = {}) {
  return {
    schema: 1,
    id: nextId(),
    type,
    mission_id: "m-fuzz",
    task_id: null,
    source: "fuzz",
    target: null,
    timestamp: STAMP,
    correlation_id: null,
    payload,
    ...extra,
  };
}

export const HARMLESS_KIND = "an event about a task or attempt that does not exist";

/** A valid event that no reader may act on: about a task or attempt that does not exist. */
function harmless(missionId: string, taskIds: readonly string[], prng: Prng): SquadEvent {
  const task = prng.pick(taskIds);
  const result = {
    status: "succeeded" as const,
    summary: "forged",
    steps: [],
    verification: [],
    usage: { model: null, input_tokens: 0, output_tokens: 0 },
    attempt: 99,
    duration_ms: 1,
    worker: "ghost/1",
  };
  return prng.pick([
    () =>
      makeEvent(
        "task_completed",
        { id: nextId(), timestamp: STAMP, mission_id: missionId, task_id: task, source: "ghost/1" },
        { result },
      ),
    () =>
      makeEvent(
        "task_started",
        {
          id: nextId(),
          timestamp: STAMP,
          mission_id: missionId,
          task_id: "no-such-task",
          source: "ghost/1",
        },
        { attempt: 1, worker: "ghost/1" },
      ),
    () =>
      makeEvent(
        "task_failed",
        {
          id: nextId(),
          timestamp: STAMP,
          mission_id: "m-unknown-mission",
          task_id: "t1",
          source: "ghost/1",
        },
        { result: { ...result, status: "failed", error: "forged", attempt: 1 } },
      ),
  ])();
}

/** Break a valid object with one mutation that makes it schema-invalid (never valid again). */
function mutate(obj: Record<string, unknown>, prng: Prng): { value: unknown; how: string } {
  const value = structuredClone(obj);
  const payload = value.payload as Record<string, unknown>;
  const task = (payload?.task ?? {}) as Record<string, unknown>;
  const mutations: Array<() => string> = [
    () => {
      delete value.schema;
      return "no schema";
    },
    () => {
      value.schema = 2;
      return "schema 2";
    },
    () => {
      delete value.payload;
      return "no payload";
    },
    () => {
      value.timestamp = "yesterday";
      return "timestamp not a date";
    },
    () => {
      value.id = "";
      return "empty id";
    },
    () => {
      value.type = prng.pick(["", "task_assigned ", "TASK_ASSIGNED", "drop_table", 42]);
      return "unknown type";
    },
    () => {
      value.mission_id = prng.pick(["../../etc/passwd", "a b", "x".repeat(81), 7]);
      return "bad mission id";
    },
    () => {
      value.payload = prng.pick([null, [], "payload", 3.14]);
      return "payload of the wrong type";
    },
    () => {
      if (!payload?.task) {
        value.source = "";
        return "empty source";
      }
      // Values no field here accepts (an id "1" or inputs {} would still be a valid task).
      const field = prng.pick(["id", "attempt", "timeout_s", "depends_on", "inputs", "wave"]);
      task[field] = prng.pick([null, -1, [1], { a: 1 }]);
      return `task.${field} of the wrong type`;
    },
  ];
  const how = prng.pick(mutations)();
  return { value, how };
}

/** A random JSON value (not an event). */
function randomJson(prng: Prng, depth = 0): unknown {
  const kinds = depth > 3 ? 4 : 6;
  switch (prng.int(kinds)) {
    case 0:
      return prng.between(-1e6, 1e6);
    case 1:
      return prng.pick(["", "squad", "💥", "\u0000", "null", "<script>"]);
    case 2:
      return prng.chance(0.5);
    case 3:
      return null;
    case 4:
      return Array.from({ length: prng.int(5) }, () => randomJson(prng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = prng.int(5); i > 0; i--)
        o[prng.pick(["type", "payload", "schema", "id", "task", "x", "__proto__"])] = randomJson(
          prng,
          depth + 1,
        );
      return o;
    }
  }
}

/** The fixed nasty cases and `random` seeded ones, in a shuffled order. */
export function badInputCorpus(o: CorpusOptions): BadMessage[] {
  const { prng, agents, missionId, taskIds } = o;
  ids = prng;
  const out: BadMessage[] = [];
  const agent = agents[0]!;
  const tasks = `squad.tasks.${agent}`;
  const submit = "squad.missions.submit";
  const coord = "squad.coordination";

  // ---- squad.tasks.<agent>: everything a worker must refuse into the DLQ
  const onTasks: Array<[string, Uint8Array]> = [
    ["empty message", new Uint8Array()],
    ["JSON null", enc("null")],
    ["JSON array", enc("[]")],
    ["JSON number", enc("42")],
    ["empty object", enc("{}")],
    ["invalid UTF-8", Uint8Array.from([0xff, 0xfe, 0xfd, 0x00, 0xc3, 0x28])],
    ["JSON nested 5000 deep", enc(`${"[".repeat(5000)}${"]".repeat(5000)}`)],
    ["a wave_started on a task subject", json(envelope("wave_started", { wave: 1, task_ids: [] }))],
    [
      "a task for another agent",
      json(envelope("task_assigned", { task: validTask("ghost") }, { target: "ghost" })),
    ],
    [
      "a task without an id",
      json(envelope("task_assigned", { task: { ...validTask(agent), id: undefined } })),
    ],
    [
      "a task with wrong types",
      json(
        envelope("task_assigned", { task: { ...validTask(agent), attempt: "one", timeout_s: -5 } }),
      ),
    ],
    [
      "__proto__ pollution attempt",
      enc(
        `{"__proto__":{"polluted":true},"schema":1,"type":"task_assigned","payload":{"__proto__":{"x":1}}}`,
      ),
    ],
    ["900 KB of text", enc("x".repeat(900 * 1024))],
  ];
  for (const [kind, data] of onTasks) out.push({ kind, subject: tasks, data, expect: "dlq" });
  out.push({
    kind: "2 MiB message",
    subject: tasks,
    data: enc("y".repeat(2 * MAX_PAYLOAD)),
    expect: "too_large",
  });

  // ---- squad.tasks.<not in the roster>: nobody consumes it; the orchestrator dead-letters it
  out.push({
    kind: "a task for an agent not in the roster",
    subject: "squad.tasks.ghost",
    data: json(envelope("task_assigned", { task: validTask("ghost") })),
    expect: "no_consumer",
  });
  out.push({
    kind: "junk on a subject no agent name can have",
    subject: "squad.tasks.NOT_AN_AGENT",
    data: enc("junk"),
    expect: "no_consumer",
  });

  // ---- squad.missions.submit: junk into the DLQ, bad briefs into a failed mission
  const onSubmit: Array<[string, Uint8Array]> = [
    ["empty submission", new Uint8Array()],
    ["not JSON", enc("submit this!")],
    [
      "a task_started on the submit subject",
      json(envelope("task_started", { attempt: 1, worker: "x" })),
    ],
    [
      "a submission without a mission id",
      json(
        envelope("mission_submitted", { brief: "# Hi", source_path: null }, { mission_id: null }),
      ),
    ],
    [
      "a submission with a path for a mission id",
      json(
        envelope("mission_submitted", { brief: "# Hi", source_path: null }, { mission_id: "../x" }),
      ),
    ],
  ];
  for (const [kind, data] of onSubmit) out.push({ kind, subject: submit, data, expect: "dlq" });
  for (const b of BAD_BRIEFS) {
    const id = `m-fuzz-${out.length}-${prng.int(1e6)}`;
    const brief = typeof b.content === "string" ? b.content : new TextDecoder().decode(b.content);
    const data = json(
      envelope(
        "mission_submitted",
        { brief, source_path: null },
        { mission_id: id, source: "cli" },
      ),
    );
    if (b.onBus === "too_large") {
      out.push({ kind: `brief: ${b.name}`, subject: submit, data, expect: "too_large" });
    } else if (b.onBus === "dlq") {
      out.push({ kind: `brief: ${b.name}`, subject: submit, data, expect: "dlq" });
    } else {
      out.push({
        kind: `brief: ${b.name}`,
        subject: submit,
        data,
        expect: "mission_failed",
        missionId: id,
        reason: b.expect,
      });
    }
  }
  // A brief with no plan and no planner model configured.
  const noPlan = `m-fuzz-noplan-${prng.int(1e6)}`;
  out.push({
    kind: "a 900 KB brief with no plan (no planner model)",
    subject: submit,
    data: json(
      envelope(
        "mission_submitted",
        { brief: `# Plan it yourself\n\n${"Words. ".repeat(130_000)}`, source_path: null },
        { mission_id: noPlan, source: "cli" },
      ),
    ),
    expect: "mission_failed",
    missionId: noPlan,
    reason: /no explicit plan and no planner model/,
  });

  // ---- squad.coordination: junk every reader skips; events about things that do not exist
  const onCoord: Array<[string, Uint8Array]> = [
    ["empty event", new Uint8Array()],
    ["not JSON", enc("{oops")],
    [
      "an event of schema 2",
      json({ ...envelope("wave_started", { wave: 1, task_ids: [] }), schema: 2 }),
    ],
    ["an event without a type", json({ ...envelope("x", {}), type: undefined })],
  ];
  for (const [kind, data] of onCoord) out.push({ kind, subject: coord, data, expect: "skipped" });
  for (let i = 0; i < 3; i++) {
    out.push({
      kind: HARMLESS_KIND,
      subject: coord,
      data: json(harmless(missionId, taskIds, prng)),
      expect: "skipped",
    });
  }

  // ---- the seeded random part
  const templates = () => [
    {
      subject: tasks,
      value: envelope("task_assigned", { task: validTask(agent) }),
      expect: "dlq" as const,
    },
    {
      subject: submit,
      value: envelope(
        "mission_submitted",
        { brief: "# x", source_path: null },
        { mission_id: "m-z" },
      ),
      expect: "dlq" as const,
    },
    {
      subject: coord,
      value: envelope("wave_started", { wave: 1, task_ids: [] }),
      expect: "skipped" as const,
    },
  ];
  for (let i = 0; i < o.random; i++) {
    const t = prng.pick(templates());
    const style = prng.int(3);
    if (style === 0) {
      const n = prng.between(0, 2000);
      out.push({
        kind: `random bytes (${n} B)`,
        subject: t.subject,
        data: prng.bytes(n),
        expect: t.expect,
      });
    } else if (style === 1) {
      out.push({
        kind: "random JSON",
        subject: t.subject,
        data: json(randomJson(prng)),
        expect: t.expect,
      });
    } else {
      const { value, how } = mutate(t.value, prng);
      out.push({
        kind: `mutated event: ${how}`,
        subject: t.subject,
        data: json(value),
        expect: t.expect,
      });
    }
  }
  // Shuffled, so no kind of message arrives in one block.
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
