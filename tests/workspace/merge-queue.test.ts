import { describe, expect, it } from "vitest";
import {
  EMPTY_QUEUE,
  addRequest,
  mergeKey,
  nextMerge,
  passEnded,
  type MergeQueue,
  type MergeRequest,
  type MissionView,
  type PublishedAnswer,
} from "../../src/workspace/merge-queue.ts";

const H0 = "0".repeat(40);
const H1 = "1".repeat(40);

const req = (task: string, attempt = 1, base = H0): MergeRequest => ({
  task_id: task,
  attempt,
  agent: "builder",
  base,
  commit: task.padEnd(40, "c").slice(0, 40),
  verify: [],
  timeout_s: 60,
});
const view = (head: string | null, merging: string[], final = false): MissionView => ({
  head,
  merging,
  final,
});
const queue = (
  requests: MergeRequest[],
  running: string[] = [],
  answered: PublishedAnswer[] = [],
): MergeQueue => ({
  requests,
  running,
  answered,
});
const H2 = "2".repeat(40);
const answer = (key: string, onto: string, head = onto): PublishedAnswer => ({ key, onto, head });

describe("merge queue policy", () => {
  const a = req("a");
  const b = req("b");
  const c = req("c");
  const bOnH1 = req("b", 2, H1);
  const cases: Array<{
    name: string;
    q: MergeQueue;
    v: MissionView;
    action: string;
    dropped?: string[];
    after?: Partial<MergeQueue>;
  }> = [
    {
      name: "integrates the attempts waiting at the front of the finishing order in one pass",
      q: queue([a, b]),
      v: view(H0, ["a#1", "b#1"]),
      action: "a#1,b#1 onto " + H0,
      after: { running: ["a#1", "b#1"] },
    },
    {
      name: "onto the machine's head when it moved since the attempt's base",
      q: queue([b]),
      v: view(H1, ["b#1"]),
      action: "b#1 onto " + H1,
    },
    {
      name: "a retry dispatched on the new head goes onto it too",
      q: queue([bOnH1]),
      v: view(H1, ["b#2"]),
      action: "b#2 onto " + H1,
    },
    {
      name: "goes in the machine's finishing order, not the order requests came",
      q: queue([b, a]),
      v: view(H0, ["a#1", "b#1"]),
      action: "a#1,b#1 onto " + H0,
    },
    {
      name: "one pass at a time: waits while one runs",
      q: queue([a, b], ["a#1"]),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "goes on before the machine applied its answers, onto the head they lead to",
      q: queue([b], [], [answer("a#1", H0, H1)]),
      v: view(H0, ["a#1", "b#1"]),
      action: "b#1 onto " + H1,
      after: { answered: [answer("a#1", H0, H1)], running: ["b#1"] },
    },
    {
      name: "after a conflict not yet applied, onto the same head",
      q: queue([b], [], [answer("a#1", H0)]),
      v: view(H0, ["a#1", "b#1"]),
      action: "b#1 onto " + H0,
    },
    {
      name: "forgets the answers the machine applied, and follows the rest",
      q: queue([c], [], [answer("a#1", H0, H1), answer("b#1", H1, H2)]),
      v: view(H1, ["b#1", "c#1"]),
      action: "c#1 onto " + H2,
      after: { answered: [answer("b#1", H1, H2)] },
    },
    {
      name: "waits when the answers not yet applied do not continue the machine's head",
      q: queue([b], [], [answer("a#1", H1, H2)]),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "once the machine applied them all, onto the head the events say",
      q: queue([b], [], [answer("a#1", H0, H2)]),
      v: view(H1, ["b#1"]),
      action: "b#1 onto " + H1,
      after: { answered: [], running: ["b#1"] },
    },
    {
      name: "drops requests the machine no longer waits for (a resume repeated them)",
      q: queue([a, b]),
      v: view(H1, ["b#1"]),
      action: "b#1 onto " + H1,
      dropped: ["a#1"],
    },
    {
      name: "waits for the first in finishing order when its request has not come",
      q: queue([b]),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "a pass stops before the first attempt whose request has not come",
      q: queue([a, c]),
      v: view(H0, ["a#1", "b#1", "c#1"]),
      action: "a#1 onto " + H0,
    },
    {
      name: "drops everything when the mission ended",
      q: queue([a, b], [], [answer("x#1", H0, H1)]),
      v: view(H0, ["x#1", "a#1", "b#1"], true),
      action: "wait",
      dropped: ["a#1", "b#1"],
      after: { requests: [], answered: [] },
    },
    {
      name: "integrates nothing for a mission without a workspace",
      q: queue([a]),
      v: view(null, ["a#1"]),
      action: "wait",
      dropped: ["a#1"],
    },
  ];

  for (const t of cases) {
    it(t.name, () => {
      const r = nextMerge(Object.freeze(t.q), t.v);
      const shown =
        r.action.kind === "wait"
          ? "wait"
          : `${r.action.requests.map((x) => mergeKey(x.task_id, x.attempt)).join(",")} onto ${r.action.onto}`;
      expect(shown).toBe(t.action);
      expect(r.dropped.map((d) => mergeKey(d.task_id, d.attempt))).toEqual(t.dropped ?? []);
      if (t.after) expect(r.queue).toMatchObject(t.after);
    });
  }

  it("a pass takes at most maxBatch attempts", () => {
    const r = nextMerge(queue([a, b, c]), view(H0, ["a#1", "b#1", "c#1"]), 2);
    expect(r.action.kind === "integrate" && r.action.requests.map((x) => x.task_id)).toEqual([
      "a",
      "b",
    ]);
  });

  it("queues a request once, however often a resume repeats it", () => {
    let q = addRequest(EMPTY_QUEUE, req("a"));
    q = addRequest(q, req("a"));
    q = addRequest(q, req("b"));
    expect(q.requests.map((r) => r.task_id)).toEqual(["a", "b"]);
  });

  it("after a pass keeps its answers until the machine applied them; what failed is tried again", () => {
    const started = nextMerge(queue([a, b]), view(H0, ["a#1", "b#1"])).queue;
    expect(started.running).toEqual(["a#1", "b#1"]);
    // a was answered, b failed before its answer.
    const ended = passEnded(started, [answer("a#1", H0, H1)]);
    expect(ended).toEqual(queue([b], [], [answer("a#1", H0, H1)]));
    const next = nextMerge(ended, view(H0, ["a#1", "b#1"]));
    expect(next.action).toMatchObject({ kind: "integrate", onto: H1 });
    const failed = passEnded(started, []);
    expect(failed).toEqual(queue([a, b]));
    // An end when no pass runs changes nothing.
    expect(passEnded(failed, [answer("a#1", H0)])).toBe(failed);
  });
});
