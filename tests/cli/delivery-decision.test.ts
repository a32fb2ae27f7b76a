import { describe, expect, it } from "vitest";
import { decideDelivery, type DeliveryRequest } from "../../src/client/delivery-decision.ts";
import { missionGitFacts, mergeOf } from "../../src/client/mission-git-facts.ts";
import { makeEvent, type CommitId } from "../../src/schema/index.ts";

const HEAD = "a".repeat(40) as CommitId;
const BASE = "b".repeat(40) as CommitId;
const git = { base: BASE, source: "git" as const, path: "/home/ada/app", branch: "main" };
const dir = { base: BASE, source: "directory" as const, path: "/home/ada/files" };
const empty = { base: BASE, source: "empty" as const, path: null };

function req(over: Partial<DeliveryRequest>): DeliveryRequest {
  return {
    missionId: "m-1",
    end: "mission_completed",
    head: HEAD,
    workspace: git,
    push: null,
    partial: false,
    ...over,
  };
}

describe("decideDelivery", () => {
  const cases: [string, Partial<DeliveryRequest>, unknown][] = [
    [
      "completed, git workspace: the branch",
      {},
      { kind: "deliver", steps: [{ kind: "branch", repoDir: git.path }] },
    ],
    [
      "completed, git workspace, --push: the branch, then the push from that repository",
      { push: "origin" },
      {
        kind: "deliver",
        steps: [
          { kind: "branch", repoDir: git.path },
          { kind: "push", remote: "origin", fromDir: git.path },
        ],
      },
    ],
    [
      "completed, a plain directory, --push URL: the push from the cache",
      { workspace: dir, push: "git://h/r.git" },
      { kind: "deliver", steps: [{ kind: "push", remote: "git://h/r.git", fromDir: null }] },
    ],
    [
      "completed, a plain directory: nothing, use swarm export",
      { workspace: dir },
      { kind: "nothing" },
    ],
    [
      "completed, no workspace: nothing, use swarm export",
      { workspace: empty },
      { kind: "nothing" },
    ],
    ["failed: nothing by default", { end: "mission_failed" }, { kind: "nothing" }],
    [
      "cancelled: nothing by default",
      { end: "mission_cancelled", push: "origin" },
      { kind: "nothing" },
    ],
    [
      "failed with --partial: the branch",
      { end: "mission_failed", partial: true },
      { kind: "deliver", steps: [{ kind: "branch", repoDir: git.path }] },
    ],
    ["no head (no git workspaces): nothing", { head: null }, { kind: "nothing" }],
    ["not ended: nothing", { end: null }, { kind: "nothing" }],
  ];
  it.each(cases)("%s", (_name, over, expected) => {
    expect(decideDelivery(req(over))).toMatchObject(expected as object);
  });

  it("says where the head is and how to get it when nothing is delivered", () => {
    const failed = decideDelivery(req({ end: "mission_failed" }));
    expect(failed.notes.join()).toContain(HEAD);
    expect(failed.notes.join()).toContain("swarm export m-1 --partial DIR");
    const plain = decideDelivery(req({ workspace: dir }));
    expect(plain.notes.join()).toContain("not a git repository");
    expect(plain.notes.join()).toContain("swarm export m-1 DIR");
  });
});

describe("missionGitFacts", () => {
  const ev = {
    planned: makeEvent(
      "mission_planned",
      { mission_id: "m-1", source: "orchestrator" },
      {
        title: "t",
        planner: null,
        workspace: git,
        plan: { waves: [{ wave: 1, tasks: [{ id: "t1", agent: "builder", title: "One" }] }] },
      },
    ),
    merged: makeEvent(
      "task_merged",
      { mission_id: "m-1", task_id: "t1", source: "orchestrator" },
      { attempt: 1, commit: HEAD, merged: HEAD, onto: BASE, head: HEAD, fast_forward: true },
    ),
    other: makeEvent(
      "task_merged",
      { mission_id: "m-2", task_id: "t1", source: "orchestrator" },
      { attempt: 1, commit: BASE, merged: BASE, onto: BASE, head: BASE, fast_forward: true },
    ),
    failed: makeEvent(
      "mission_failed",
      { mission_id: "m-1", source: "orchestrator" },
      { reason: "x", head: HEAD },
    ),
  };

  it("the workspace, the merges (each once, other missions left out), the final head", () => {
    const facts = missionGitFacts([ev.planned, ev.merged, ev.other, ev.merged, ev.failed], "m-1");
    expect(facts.workspace).toEqual(git);
    expect(facts.tasks).toEqual({ t1: { title: "One", agent: "builder" } });
    expect(facts.merges).toHaveLength(1);
    expect(mergeOf(facts, "t1")?.merged).toBe(HEAD);
    expect(mergeOf(facts, "t2")).toBeNull();
    expect(facts.final).toEqual({ type: "mission_failed", head: HEAD });
    expect(facts.head).toBe(HEAD);
  });

  it("a running mission's head is its last merge, else its base", () => {
    expect(missionGitFacts([ev.planned], "m-1").head).toBe(BASE);
    expect(missionGitFacts([ev.planned, ev.merged], "m-1").head).toBe(HEAD);
    expect(missionGitFacts([], "m-1").head).toBeNull();
    // Ended without a head (no git workspaces then): none, not the base.
    const done = makeEvent(
      "mission_completed",
      { mission_id: "m-1", source: "orchestrator" },
      {
        summary: "",
        tasks: { total: 0, succeeded: 0, failed: 0 },
        duration_ms: 1,
        usage: { input_tokens: 0, output_tokens: 0 },
        report: null,
      },
    );
    expect(missionGitFacts([ev.planned, done], "m-1").head).toBeNull();
  });
});
