import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { compileCommandPolicy, policyOnlyGate } from "../../src/tools/command-policy.ts";
import { silentLogger } from "../../src/log.ts";
import type { SquadEvent } from "../../src/schema/events.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { mergeKey, type MergeRequest, type MissionView } from "../../src/workspace/merge-queue.ts";
import { mergeTrees, parseMergeTree } from "../../src/workspace/merge-tree.ts";
import {
  attemptRef,
  branchRef,
  createMissionIntegrator,
  integrateAttempt,
  integrateChain,
  shellVerifier,
} from "../../src/workspace/mission-integrator.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { parseBundleHeader } from "../../src/workspace/bundle-header.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { commitFiles } from "./repo-fixtures.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let store: BundleStore;
let root: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "mission-integrator-test" });
  store = await openBundleStore(nc, {
    maxBytes: 64 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 1024 * 1024,
    replicas: 1,
  });
  root = await mkdtemp(path.join(tmpdir(), "squad-integrator-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

const noSandbox = shellVerifier(async () => undefined);
const TRAILERS = "\n\nSquad-Mission: m\nSquad-Task: a\nSquad-Attempt: 1\nSquad-Agent: builder\n";

/** A worker's cache (where attempts are committed and published) and the orchestrator's. */
async function setup(mission: string) {
  const worker = await MissionRepo.open(path.join(root, "worker"), mission, store);
  const orch = await MissionRepo.open(path.join(root, "orchestrator"), mission, store);
  const base = await commitFiles(worker, null, { "a.txt": "one\ntwo\nthree\n", "b.txt": "b\n" });
  await worker.publish(base, []);
  /** An attempt's commit on `on`, published like a worker does. */
  const attempt = async (on: string, files: Record<string, string>, title = "task") => {
    const c = await commitFiles(worker, on, files, `${title}${TRAILERS}`);
    await worker.publish(c, [on]);
    return c;
  };
  return { worker, orch, base, attempt };
}

const request = (
  task: string,
  base: string,
  commit: string,
  verify: string[] = [],
): MergeRequest => ({
  task_id: task,
  attempt: 1,
  agent: "builder",
  base,
  commit,
  verify,
  timeout_s: 30,
});

const opts = (mission: string) => ({
  checkoutDir: path.join(root, "checkouts", mission),
  verify: noSandbox,
  signal: new AbortController().signal,
});

describe("integrateAttempt (real git, real object store)", () => {
  it("fast-forwards when the base is the head, and rebases onto a moved head keeping author and trailers", async () => {
    const { orch, base, attempt } = await setup("m-ff");
    const a = await attempt(base, { "a.txt": "ONE\ntwo\nthree\n" }, "task a");
    const b = await attempt(base, { "b.txt": "B\n" }, "task b");

    const first = await integrateAttempt(orch, request("a", base, a), base, opts("m-ff"));
    expect(first).toEqual({ kind: "merged", merged: a, head: a, fastForward: true });
    expect(await orch.readRef(branchRef("m-ff"))).toBe(a);
    expect(await orch.readRef(attemptRef("a", 1))).toBe(a);

    const second = await integrateAttempt(
      orch,
      request("b", base, b, ["grep -q ONE a.txt"]),
      a,
      opts("m-ff"),
    );
    expect(second.kind).toBe("merged");
    if (second.kind !== "merged") return;
    expect(second.fastForward).toBe(false);
    const merged = second.merged;
    expect(await orch.git(["rev-parse", `${merged}^`])).toBe(a);
    expect(await orch.git(["show", `${merged}:a.txt`])).toBe("ONE\ntwo\nthree");
    expect(await orch.git(["show", `${merged}:b.txt`])).toBe("B");
    const who = await orch.git([
      "log",
      "-1",
      "--format=%an|%cn|%(trailers:key=Squad-Task,valueonly)",
      merged,
    ]);
    expect(who.trim()).toBe("tester|squad-orchestrator|a");
    expect(await orch.readRef(branchRef("m-ff"))).toBe(merged);
    // Published before anyone hears of it: a fresh cache can fetch the new head.
    const other = await MissionRepo.open(path.join(root, "other"), "m-ff", store);
    await other.ensure(merged);
    expect(await other.has(merged)).toBe(true);
    // The same integration again (a restart between the merge and its event) makes the same commit.
    const again = await integrateAttempt(orch, request("b", base, b), a, opts("m-ff"));
    expect(again).toMatchObject({ kind: "merged", merged });
  });

  it("integrates a queue's waiting attempts in one pass: each onto the head before it, verify on each merged tree, one bundle", async () => {
    const { orch, base, attempt } = await setup("m-pass");
    const a = await attempt(base, { "a.txt": "ONE\ntwo\nthree\n" });
    const b = await attempt(base, { "b.txt": "B\n" });
    const c = await attempt(base, { "a.txt": "uno\ntwo\nthree\n" });
    const d = await attempt(base, { "d.txt": "D\n" });
    const requests = [
      request("a", base, a),
      request("b", base, b, ["grep -q ONE a.txt"]),
      request("c", base, c),
      // d's merged tree holds a's and b's changes: its verify sees them.
      request("d", base, d, ["grep -q ONE a.txt", "test -f b.txt", "test -f d.txt"]),
    ];
    const pass = await integrateChain(orch, requests, base, opts("m-pass"));
    expect(pass.error).toBeUndefined();
    const [sa, sb, sc, sd] = pass.steps;
    expect(sa).toMatchObject({
      onto: base,
      outcome: { kind: "merged", merged: a, fastForward: true },
    });
    expect(sb).toMatchObject({ onto: a, outcome: { kind: "merged", fastForward: false } });
    const mb = sb!.outcome.kind === "merged" ? sb!.outcome.merged : "";
    expect(sc).toMatchObject({ onto: mb, outcome: { kind: "conflicted", files: ["a.txt"] } });
    expect(sd).toMatchObject({ onto: mb, outcome: { kind: "merged", fastForward: false } });
    const md = sd!.outcome.kind === "merged" ? sd!.outcome.merged : "";
    expect(await orch.git(["rev-parse", `${md}^`])).toBe(mb);
    expect(await orch.readRef(branchRef("m-pass"))).toBe(md);
    expect(await orch.readRef(attemptRef("c", 1))).toBe(c);
    // One bundle for the pass's rebased commits, under each of their names.
    const [bytesB, bytesD] = await Promise.all([store.get("m-pass", mb), store.get("m-pass", md)]);
    expect(Buffer.from(bytesB!).equals(Buffer.from(bytesD!))).toBe(true);
    const other = await MissionRepo.open(path.join(root, "other-pass"), "m-pass", store);
    await other.ensure(mb);
    expect(await other.has(md)).toBe(true);
    // The same pass again (an orchestrator resumed mid-merge) makes the very same commits.
    const again = await integrateChain(orch, requests.slice(1), a, opts("m-pass"));
    expect(again.steps.map((s) => (s.outcome.kind === "merged" ? s.outcome.merged : "x"))).toEqual([
      mb,
      "x",
      md,
    ]);
  });

  it("a later pass's bundle starts at its attempts' base: a replica still there downloads one bundle", async () => {
    const { orch, base, attempt } = await setup("m-pass-floor");
    const a = await attempt(base, { "a.txt": "A\n" });
    const b = await attempt(base, { "n.txt": "N\n" });
    const c = await attempt(base, { "c.txt": "C\n" });
    await integrateChain(orch, [request("a", base, a)], base, opts("m-pass-floor"));
    const pass = await integrateChain(
      orch,
      [request("b", base, b), request("c", base, c)],
      a,
      opts("m-pass-floor"),
    );
    const heads = pass.steps.map((s) => (s.outcome.kind === "merged" ? s.outcome.merged : ""));
    const bytes = await store.get("m-pass-floor", heads[1]!);
    expect(parseBundleHeader(bytes!).prerequisites).toEqual([base]);
    // A replica that has only the base (it ran b): one download brings a, b's and c's merges.
    const replica = await MissionRepo.open(path.join(root, "replica-floor"), "m-pass-floor", store);
    await replica.ensure(base);
    await replica.ensure(heads[1]!);
    expect(await replica.has(a)).toBe(true);
    expect(await replica.has(heads[0]!)).toBe(true);
  });

  it("a verify that fails on its merged tree in a pass leaves the head for the next attempt", async () => {
    const { orch, base, attempt } = await setup("m-pass-verify");
    const a = await attempt(base, { "a.txt": "A\n" });
    const b = await attempt(base, { "n.txt": "N\n" });
    const c = await attempt(base, { "c.txt": "C\n" });
    const pass = await integrateChain(
      orch,
      [
        request("a", base, a),
        request("b", base, b, ["test -f nothing"]),
        request("c", base, c, ["test -f c.txt", "test ! -f n.txt"]),
      ],
      base,
      opts("m-pass-verify"),
    );
    expect(pass.steps.map((s) => `${s.outcome.kind} onto ${s.onto === a ? "a" : s.onto}`)).toEqual([
      `merged onto ${base}`,
      "conflicted onto a",
      "merged onto a",
    ]);
  });

  it("reports a conflict with its files, and a verify that fails on the merged tree", async () => {
    const { orch, base, attempt } = await setup("m-conflict");
    const a = await attempt(base, { "a.txt": "one\nTWO from a\nthree\n" });
    const b = await attempt(base, { "a.txt": "one\nTWO from b\nthree\n", "c.txt": "c\n" });
    await integrateAttempt(orch, request("a", base, a), base, opts("m-conflict"));
    const r = await integrateAttempt(orch, request("b", base, b), a, opts("m-conflict"));
    expect(r).toMatchObject({ kind: "conflicted", reason: "conflict", files: ["a.txt"] });
    if (r.kind === "conflicted") expect(r.error).toContain("Merge conflict in a.txt");
    expect(await orch.readRef(branchRef("m-conflict"))).toBe(a);

    const c = await attempt(base, { "b.txt": "changed\n" });
    const v = await integrateAttempt(
      orch,
      request("c", base, c, ["test -f b.txt", "grep -q 'from b' a.txt"]),
      a,
      opts("m-conflict"),
    );
    expect(v).toMatchObject({ kind: "conflicted", reason: "verify_failed", files: [] });
    if (v.kind === "conflicted") expect(v.error).toContain("grep -q 'from b' a.txt");
    expect(await orch.readRef(branchRef("m-conflict"))).toBe(a);
  });

  it("runs verify under the agent's command policy: a denied check fails, not run", async () => {
    const { orch, base, attempt } = await setup("m-policy");
    const a = await attempt(base, { "a.txt": "A\n" });
    const b = await attempt(base, { "b.txt": "B\n" });
    await integrateAttempt(orch, request("a", base, a), base, opts("m-policy"));
    const gated = shellVerifier(
      async () => undefined,
      () => policyOnlyGate(compileCommandPolicy({ deny: ["curl"] })),
    );
    const r = await integrateAttempt(
      orch,
      request("b", base, b, ["curl -s http://example.com"]),
      a,
      {
        ...opts("m-policy"),
        verify: gated,
      },
    );
    expect(r).toMatchObject({ kind: "conflicted", reason: "verify_failed" });
    if (r.kind === "conflicted") expect(r.error).toMatch(/was not run: .*deny pattern/);
  });

  it("parses merge-tree's output, clean and conflicted", async () => {
    const { worker, base, attempt } = await setup("m-parse");
    const a = await attempt(base, { "a.txt": "x\n" });
    const b = await attempt(base, { "a.txt": "y\n", "b.txt": "z\n" });
    const clean = await mergeTrees(worker.gitDir, a, await attempt(base, { "n.txt": "n\n" }));
    expect(clean).toMatchObject({ clean: true, files: [], conflicts: [] });
    const bad = await mergeTrees(worker.gitDir, a, b);
    expect(bad).toMatchObject({ clean: false, files: ["a.txt"] });
    expect(bad.conflicts).toEqual(["CONFLICT (content): Merge conflict in a.txt"]);
    expect(() => parseMergeTree("garbage")).toThrow(/unexpected git merge-tree output/);
  });
});

describe("the integrator's queue", () => {
  it("integrates one at a time in finishing order onto the head the view says, and answers with events", async () => {
    const { base, attempt } = await setup("m-queue");
    const a = await attempt(base, { "a.txt": "A\ntwo\nthree\n" });
    const b = await attempt(base, { "b.txt": "B\n" });
    // A stand-in for the mission machine: applies the answers to its view.
    const view: { head: string; merging: string[]; final: boolean } = {
      head: base,
      merging: [mergeKey("a", 1), mergeKey("b", 1)],
      final: false,
    };
    const events: SquadEvent[] = [];
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    const integrator = createMissionIntegrator({
      cacheRoot: path.join(root, "orchestrator-q"),
      checkoutRoot: path.join(root, "checkouts-q"),
      store: async () => store,
      log: silentLogger,
      verify: noSandbox,
      publish: async (e) => {
        events.push(e);
        // The machine applies it a little later, as the feed would.
        setImmediate(() => {
          const key = mergeKey(e.task_id!, (e.payload as { attempt: number }).attempt);
          view.merging = view.merging.filter((k) => k !== key);
          if (e.type === "task_merged") view.head = e.payload.head;
          integrator.poke("m-queue");
          if (view.merging.length === 0) settle();
        });
      },
    });
    const read = (): MissionView => ({ ...view });
    // b's request first: the machine's order (a finished first) decides.
    integrator.request("m-queue", request("b", base, b), read);
    integrator.request("m-queue", request("a", base, a), read);
    integrator.request("m-queue", request("a", base, a), read); // a resume's repeat
    await done;
    await integrator.stop();
    expect(events.map((e) => `${e.type} ${e.task_id}`)).toEqual(["task_merged a", "task_merged b"]);
    const [ma, mb] = events as Array<SquadEvent & { payload: Record<string, unknown> }>;
    expect(ma!.payload).toMatchObject({
      commit: a,
      merged: a,
      onto: base,
      head: a,
      fast_forward: true,
    });
    expect(mb!.payload).toMatchObject({ commit: b, onto: a, fast_forward: false });
    expect(ma!.id).toBe("m-queue.a.1.merged");
  });

  it("goes on onto the head its answers lead to before the machine applied them", async () => {
    const { base, attempt } = await setup("m-pipeline");
    const a = await attempt(base, { "a.txt": "A\ntwo\nthree\n" });
    const b = await attempt(base, { "b.txt": "B\n" });
    const c = await attempt(base, { "c.txt": "C\n" });
    // A machine that lags: it has applied none of the answers yet.
    const view = { head: base, merging: [mergeKey("a", 1), mergeKey("b", 1)], final: false };
    const events: Array<SquadEvent & { payload: Record<string, unknown> }> = [];
    const waiters: Array<{ n: number; resolve: () => void }> = [];
    const published = (n: number) =>
      new Promise<void>((resolve) => {
        if (events.length >= n) resolve();
        else waiters.push({ n, resolve });
      });
    const integrator = createMissionIntegrator({
      cacheRoot: path.join(root, "orchestrator-p"),
      checkoutRoot: path.join(root, "checkouts-p"),
      store: async () => store,
      log: silentLogger,
      verify: noSandbox,
      publish: async (e) => {
        events.push(e as SquadEvent & { payload: Record<string, unknown> });
        for (const w of waiters) if (events.length >= w.n) w.resolve();
      },
    });
    const read = (): MissionView => ({ ...view, merging: [...view.merging] });
    integrator.request("m-pipeline", request("a", base, a), read);
    integrator.request("m-pipeline", request("b", base, b), read);
    await published(2);
    // c's result arrives; the answers for a and b have not come back through the feed.
    view.merging.push(mergeKey("c", 1));
    integrator.request("m-pipeline", request("c", base, c), read);
    await published(3);
    await integrator.stop();
    expect(events.map((e) => `${e.type} ${e.task_id}`)).toEqual([
      "task_merged a",
      "task_merged b",
      "task_merged c",
    ]);
    expect(events[1]!.payload.onto).toBe(a);
    expect(events[2]!.payload.onto).toBe(events[1]!.payload.head);
  });

  it("readies a mission's cache (the head fetched) when poked with a view, before its first merge", async () => {
    const { base } = await setup("m-ready");
    const cacheRoot = path.join(root, "orchestrator-r");
    const integrator = createMissionIntegrator({
      cacheRoot,
      checkoutRoot: path.join(root, "checkouts-r"),
      store: async () => store,
      log: silentLogger,
      verify: noSandbox,
      publish: async () => undefined,
    });
    const view = (): MissionView => ({ head: base, merging: [], final: false });
    integrator.poke("m-ready", view);
    integrator.poke("m-ready", view); // once per mission
    await integrator.settled("m-ready");
    const cache = await MissionRepo.open(cacheRoot, "m-ready", store);
    expect(await cache.has(base)).toBe(true);
    // A mission without a workspace, or over, gets no cache.
    integrator.poke("m-none", () => ({ head: null, merging: [], final: false }));
    integrator.poke("m-over", () => ({ head: base, merging: [], final: true }));
    expect(integrator.running()).toBe(0);
    await integrator.stop();
  });
});
