import { describe, expect, it } from "vitest";
import {
  EMPTY_QUEUE,
  addRequest,
  mergeEnded,
  mergeKey,
  nextMerge,
  type MergeQueue,
  type MergeRequest,
  type MissionView,
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
  running: string | null = null,
  answered: string | null = null,
): MergeQueue => ({
  requests,
  running,
  answered,
});

describe("merge queue policy", () => {
  const a = req("a");
  const b = req("b");
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
      name: "fast-forwards the first request whose base is the head",
      q: queue([a, b]),
      v: view(H0, ["a#1", "b#1"]),
      action: "ff a#1 onto " + H0,
      after: { running: "a#1" },
    },
    {
      name: "rebases when the head moved since the attempt's base",
      q: queue([b]),
      v: view(H1, ["b#1"]),
      action: "rebase b#1 onto " + H1,
    },
    {
      name: "fast-forwards a retry dispatched on the new head",
      q: queue([bOnH1]),
      v: view(H1, ["b#2"]),
      action: "ff b#2 onto " + H1,
    },
    {
      name: "goes in the machine's finishing order, not the order requests came",
      q: queue([b, a]),
      v: view(H0, ["a#1", "b#1"]),
      action: "ff a#1 onto " + H0,
    },
    {
      name: "one at a time: waits while an integration runs",
      q: queue([a, b], "a#1"),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "waits until the machine applied the answer it published",
      q: queue([b], null, "a#1"),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "goes on once the machine applied it, onto the head the events say",
      q: queue([b], null, "a#1"),
      v: view(H1, ["b#1"]),
      action: "rebase b#1 onto " + H1,
      after: { answered: null, running: "b#1" },
    },
    {
      name: "drops requests the machine no longer waits for (a resume repeated them)",
      q: queue([a, b]),
      v: view(H1, ["b#1"]),
      action: "rebase b#1 onto " + H1,
      dropped: ["a#1"],
    },
    {
      name: "waits for the first in finishing order when its request has not come",
      q: queue([b]),
      v: view(H0, ["a#1", "b#1"]),
      action: "wait",
    },
    {
      name: "drops everything when the mission ended",
      q: queue([a, b]),
      v: view(H0, ["a#1", "b#1"], true),
      action: "wait",
      dropped: ["a#1", "b#1"],
      after: { requests: [] },
    },
    {
      name: "integrates nothing for a mission without a workspace",
      q: queue([a]),
      v: view(null, ["a#1"]),
      action: "wait",
      dropped: ["a#1"],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const r = nextMerge(Object.freeze(c.q), c.v);
      const shown =
        r.action.kind === "wait"
          ? "wait"
          : `${r.action.fastForward ? "ff" : "rebase"} ${mergeKey(r.action.request.task_id, r.action.request.attempt)} onto ${r.action.onto}`;
      expect(shown).toBe(c.action);
      expect(r.dropped.map((d) => mergeKey(d.task_id, d.attempt))).toEqual(c.dropped ?? []);
      if (c.after) expect(r.queue).toMatchObject(c.after);
    });
  }

  it("queues a request once, however often a resume repeats it", () => {
    let q = addRequest(EMPTY_QUEUE, req("a"));
    q = addRequest(q, req("a"));
    q = addRequest(q, req("b"));
    expect(q.requests.map((r) => r.task_id)).toEqual(["a", "b"]);
  });

  it("after an answer waits for the machine; after a failure tries the same request again", () => {
    const started = nextMerge(queue([req("a")]), view(H0, ["a#1"])).queue;
    expect(started.running).toBe("a#1");
    const failed = mergeEnded(started, "a#1", false);
    expect(failed).toEqual(queue([req("a")]));
    expect(nextMerge(failed, view(H0, ["a#1"])).action.kind).toBe("integrate");
    const answered = mergeEnded(started, "a#1", true);
    expect(answered).toEqual(queue([], null, "a#1"));
    expect(nextMerge(answered, view(H0, ["a#1"])).action.kind).toBe("wait");
    // An end for a key not running changes nothing.
    expect(mergeEnded(started, "b#1", true)).toBe(started);
  });
});
