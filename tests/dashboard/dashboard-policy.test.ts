/**
 * The dashboard's pure parts: who may act (token, listening address), the
 * critical path of a plan, and the view folded from events (tasks, attempts,
 * approvals, replicas, each event once).
 */
import { describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import {
  bearerToken,
  isLoopbackHost,
  resolveToken,
  tokenMatches,
} from "../../src/dashboard/access.ts";
import { criticalPath } from "../../src/dashboard/critical-path.ts";
import { createSwarmView } from "../../src/dashboard/swarm-view.ts";
import { makeEvent, type SquadEvent } from "../../src/schema/index.ts";

describe("access", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["::1", true],
    ["[::1]", true],
    ["localhost", true],
    ["0.0.0.0", false],
    ["10.0.0.5", false],
    ["::", false],
    ["example.org", false],
  ])("%s is loopback: %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it("generates a token on loopback, and refuses another host without a chosen one", () => {
    const a = resolveToken("127.0.0.1", undefined);
    expect(a.generated).toBe(true);
    expect(a.token.length).toBeGreaterThanOrEqual(32);
    expect(resolveToken("127.0.0.1", undefined).token).not.toBe(a.token);
    expect(() => resolveToken("0.0.0.0", undefined)).toThrow(BadInputError);
    expect(() => resolveToken("0.0.0.0", "  ")).toThrow(/SWARM_DASHBOARD_TOKEN/);
    expect(() => resolveToken("0.0.0.0", "short")).toThrow(/too short/);
    expect(resolveToken("0.0.0.0", "a-long-enough-token-123")).toEqual({
      token: "a-long-enough-token-123",
      generated: false,
    });
  });

  it("reads a bearer token and compares it exactly", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
    expect(tokenMatches("abc", "abc")).toBe(true);
    expect(tokenMatches("abd", "abc")).toBe(false);
    expect(tokenMatches("abcd", "abc")).toBe(false);
    expect(tokenMatches(null, "abc")).toBe(false);
    expect(tokenMatches("", "")).toBe(false);
  });
});

describe("criticalPath", () => {
  it.each([
    { name: "no tasks", nodes: [], path: [] },
    {
      name: "the heavier branch of a diamond",
      nodes: [
        { id: "a", depends_on: [], weight: 1 },
        { id: "b", depends_on: ["a"], weight: 5 },
        { id: "c", depends_on: ["a"], weight: 2 },
        { id: "d", depends_on: ["b", "c"], weight: 1 },
      ],
      path: ["a", "b", "d"],
    },
    {
      name: "the longest chain when weights are equal",
      nodes: [
        { id: "x", depends_on: [], weight: 1 },
        { id: "y", depends_on: [], weight: 1 },
        { id: "z", depends_on: ["y"], weight: 1 },
      ],
      path: ["y", "z"],
    },
    {
      name: "unknown dependencies and cycles are not followed",
      nodes: [
        { id: "p", depends_on: ["q", "ghost"], weight: 1 },
        { id: "q", depends_on: ["p"], weight: 1 },
      ],
      path: ["q", "p"],
    },
  ])("$name", ({ nodes, path }) => {
    expect(criticalPath(nodes)).toEqual(path);
  });
});

const M = "m-view";
const planned = makeEvent(
  "mission_planned",
  { mission_id: M, source: "orchestrator" },
  {
    title: "View test",
    planner: null,
    budget: { tokens: 1000 },
    plan: {
      waves: [
        { wave: 1, tasks: [{ id: "a", agent: "builder", title: "A" }] },
        { wave: 2, tasks: [{ id: "b", agent: "tester", title: "B" }] },
      ],
    },
  },
);
const result = (task: string, status: "succeeded" | "failed", attempt: number): SquadEvent =>
  makeEvent(
    status === "succeeded" ? "task_completed" : "task_failed",
    { mission_id: M, task_id: task, source: "builder/r1" },
    {
      result: {
        status,
        summary: `${task} ${status}`,
        ...(status === "failed" ? { error: "exit 1" } : {}),
        steps: [
          {
            tool: "run_shell",
            args: { command: "x" },
            ok: status === "succeeded",
            exit_code: 0,
            duration_ms: 5,
            output: "out",
          },
        ],
        verification: [],
        usage: { model: "ollama:m", input_tokens: 10, output_tokens: 5 },
        attempt,
        duration_ms: 50,
        worker: "builder/r1",
      },
    },
  );

describe("swarm view", () => {
  it("folds a mission: plan, attempts with their steps, tokens per model, final state", () => {
    const v = createSwarmView();
    const now = new Date();
    expect(v.apply(planned)).toBe(true);
    expect(v.apply(planned)).toBe(false);
    let m = v.mission(M, now)!;
    expect(m.status).toBe("planned");
    expect(m.tasks.map((t) => [t.id, t.state, t.depends_on])).toEqual([
      ["a", "pending", []],
      ["b", "pending", ["a"]],
    ]);
    expect(m.edges).toEqual([{ from: "a", to: "b" }]);
    expect(m.critical_path).toEqual(["a", "b"]);

    v.apply(
      makeEvent(
        "task_started",
        { mission_id: M, task_id: "a", source: "builder/r1" },
        { attempt: 1, worker: "builder/r1" },
      ),
    );
    expect(v.mission(M, now)!.status).toBe("running");
    expect(v.task(M, "a")!.state).toBe("running");
    v.apply(result("a", "failed", 1));
    v.apply(
      makeEvent(
        "task_started",
        { mission_id: M, task_id: "a", source: "builder/r2" },
        { attempt: 2, worker: "builder/r2" },
      ),
    );
    v.apply(result("a", "succeeded", 2));
    const a = v.task(M, "a")!;
    expect(a.state).toBe("succeeded");
    expect(a.attempts.map((x) => [x.attempt, x.status, x.error])).toEqual([
      [1, "failed", "exit 1"],
      [2, "succeeded", null],
    ]);
    expect(a.attempts[1]!.steps[0]!.output).toBe("out");
    m = v.mission(M, now)!;
    expect(m.tokens).toEqual({ "ollama:m": { input_tokens: 20, output_tokens: 10 } });
    expect(m.used.tokens).toBe(30);
    expect(m.budget.tokens).toBe(1000);
    expect(m.progress).toMatchObject({ total: 2, succeeded: 1, failed: 0 });
  });

  it("a cancel: the request alone does not end the mission; tasks stopped by it read cancelled", () => {
    const v = createSwarmView();
    v.apply(planned);
    v.apply(
      makeEvent(
        "mission_cancelled",
        { mission_id: M, source: "cli" },
        { reason: "stop", requested_by: "cli" },
      ),
    );
    expect(v.mission(M, new Date())!.status).toBe("planned");
    v.apply(result("a", "failed", 1));
    expect(v.task(M, "a")!.state).toBe("cancelled");
    v.apply(
      makeEvent(
        "mission_cancelled",
        { mission_id: M, source: "orchestrator" },
        { reason: "stop", requested_by: "cli" },
      ),
    );
    const m = v.mission(M, new Date())!;
    expect(m.status).toBe("cancelled");
    expect(m.tasks.map((t) => t.state)).toEqual(["cancelled", "cancelled"]);
  });

  it("keeps pending approvals until they are resolved, and replicas with their last status", () => {
    const v = createSwarmView();
    v.apply(
      makeEvent(
        "approval_requested",
        { mission_id: M, task_id: "a", source: "gated/g1" },
        {
          approval_id: `${M}.a.1.1`,
          agent: "gated",
          worker: "gated/g1",
          command: "deploy-prod",
          reason: "policy",
          timeout_s: 60,
        },
      ),
    );
    expect(v.approvals().map((a) => a.approval_id)).toEqual([`${M}.a.1.1`]);
    v.apply(
      makeEvent(
        "approval_resolved",
        { mission_id: M, task_id: "a", source: "cli" },
        { approval_id: `${M}.a.1.1`, decision: "approved", by: "cli" },
      ),
    );
    expect(v.approvals()).toEqual([]);

    v.apply(
      makeEvent(
        "agent_online",
        { mission_id: null, source: "gated/g1" },
        {
          agent: "gated",
          instance: "g1",
          pid: 1,
          host: "h",
          concurrency: 2,
          model: null,
          version: "1",
        },
      ),
    );
    v.apply(
      makeEvent(
        "agent_heartbeat",
        { mission_id: null, source: "gated/g1" },
        { agent: "gated", instance: "g1", in_flight: 1, completed: 3, failed: 0, uptime_s: 9 },
      ),
    );
    expect(v.replicas()).toMatchObject([
      { agent: "gated", instance: "g1", online: true, in_flight: 1, completed: 3, host: "h" },
    ]);
    v.apply(
      makeEvent(
        "agent_offline",
        { mission_id: null, source: "gated/g1" },
        { agent: "gated", instance: "g1", reason: "stopped" },
      ),
    );
    expect(v.replicas()).toMatchObject([{ online: false, in_flight: 0, reason: "stopped" }]);
  });
});
