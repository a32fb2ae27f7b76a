import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import {
  commitMessage,
  indexFileOf,
  prepareCheckout,
  type Checkout,
  type CommitRequest,
  type KnownCheckout,
} from "../../src/workspace/attempt-checkout.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { commitFiles } from "./repo-fixtures.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let store: BundleStore;
let root: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "attempt-checkout-test" });
  store = await openBundleStore(nc, {
    maxBytes: 64 * 1024 * 1024,
    maxAgeS: 3600,
    bundleLimitBytes: 8 * 1024 * 1024,
    replicas: 1,
  });
  root = await mkdtemp(path.join(tmpdir(), "squad-checkout-"));
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

const req = (task: string, attempt = 1): CommitRequest => ({
  author: { name: "coder/w1", email: "coder@squad.local" },
  title: `Do ${task}`,
  trailers: {
    "Squad-Mission": "m",
    "Squad-Task": task,
    "Squad-Attempt": String(attempt),
    "Squad-Agent": "coder",
  },
});

async function files(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true })) as string[]).sort();
}

describe("prepareCheckout", () => {
  it("a plain directory at the base; the commit is published with author, subject and trailers", async () => {
    const publisher = await MissionRepo.open(path.join(root, "orch"), "m1", store);
    const base = await commitFiles(publisher, null, {
      "README.md": "hi\n",
      ".gitignore": "build/\n",
      "src/a.txt": "a\n",
    });
    await publisher.publish(base, []);
    const repo = await MissionRepo.open(path.join(root, "worker"), "m1", store);
    const dir = path.join(root, "ws", "m1", "w1-0");
    const co = await prepareCheckout({ repo, dir, base, slot: "w1-0" });
    expect(await files(dir)).toEqual([".gitignore", "README.md", "src", "src/a.txt"]);
    // nothing changed: no commit
    expect(await co.commitAttempt(req("t0"))).toBeNull();
    await writeFile(path.join(dir, "src", "a.txt"), "a\nb\n");
    await writeFile(path.join(dir, "new.txt"), "new\n");
    await mkdir(path.join(dir, "build"));
    await writeFile(path.join(dir, "build", "out.o"), "ignored");
    const changes = await co.commitAttempt(req("t1"));
    expect(changes).toMatchObject({
      base,
      files: [
        { path: "new.txt", status: "added", additions: 1, deletions: 0 },
        { path: "src/a.txt", status: "modified", additions: 1, deletions: 0 },
      ],
      additions: 2,
      deletions: 0,
    });
    await co.release();
    // another process fetches it from the store
    await publisher.ensure(changes!.commit);
    const [entry] = await publisher.log(base, changes!.commit);
    expect(entry).toMatchObject({
      parents: [base],
      author: "coder/w1 <coder@squad.local>",
      subject: "Do t1",
      trailers: {
        "Squad-Mission": "m",
        "Squad-Task": "t1",
        "Squad-Attempt": "1",
        "Squad-Agent": "coder",
      },
    });
    expect(await publisher.git(["ls-tree", "-r", "--name-only", changes!.commit])).not.toContain(
      "build",
    );
  });

  it("the next attempt sees exactly its base: stale, ignored, foreign-owned and locked files gone", async () => {
    const repo = await MissionRepo.open(path.join(root, "w2"), "m2", store);
    const base = await commitFiles(repo, null, { "keep.txt": "keep\n", ".gitignore": "*.log\n" });
    await repo.publish(base, []);
    const dir = path.join(root, "ws", "m2", "w2-0");
    const first = await prepareCheckout({ repo, dir, base, slot: "w2-0" });
    await writeFile(path.join(dir, "keep.txt"), "half-written");
    await writeFile(path.join(dir, "debug.log"), "ignored");
    await mkdir(path.join(dir, "deep", "er"), { recursive: true });
    await writeFile(path.join(dir, "deep", "er", "x"), "x");
    await chown(path.join(dir, "deep", "er", "x"), 65534, 65534).catch(() => undefined);
    await chmod(path.join(dir, "deep", "er"), 0o500);
    await symlink("/etc", path.join(dir, "etc-link"));
    const changes = await first.commitAttempt(req("t1"));
    await first.keepFailed("refs/squad/t1/1");
    await first.release();
    expect(await repo.readRef("refs/squad/t1/1")).toBe(changes!.commit);
    // a killed worker's lock on this slot's index, and an untracked file after the commit
    await writeFile(`${indexFileOf(repo, "w2-0")}.lock`, "");
    await writeFile(path.join(dir, "late.txt"), "late");
    const second = await prepareCheckout({ repo, dir, base, slot: "w2-0" });
    expect(await files(dir)).toEqual([".gitignore", "keep.txt"]);
    expect(await readFile(path.join(dir, "keep.txt"), "utf8")).toBe("keep\n");
    await second.release();
  });

  it("moves a reused checkout to a new base, and starts afresh when its index is gone", async () => {
    const repo = await MissionRepo.open(path.join(root, "w3"), "m3", store);
    const b1 = await commitFiles(repo, null, { "a.txt": "1\n", "old.txt": "old\n" });
    const b2 = await commitFiles(repo, b1, { "a.txt": "2\n", "old.txt": null, "new/b.txt": "b\n" });
    const dir = path.join(root, "ws", "m3", "w3-0");
    const first = await prepareCheckout({ repo, dir, base: b1, slot: "w3-0" });
    expect(await first.commitAttempt(req("t0"))).toBeNull();
    await first.release();
    expect((await stat(dir)).isDirectory()).toBe(true); // kept for the next attempt
    await prepareCheckout({ repo, dir, base: b2, slot: "w3-0" });
    expect(await files(dir)).toEqual(["a.txt", "new", "new/b.txt"]);
    await rm(indexFileOf(repo, "w3-0"));
    await writeFile(path.join(dir, "junk"), "junk");
    await prepareCheckout({ repo, dir, base: b1, slot: "w3-0" });
    expect(await files(dir)).toEqual(["a.txt", "old.txt"]);
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it("a checkout released without a commit (refused, aborted) is removed, a top-level .git with it", async () => {
    const repo = await MissionRepo.open(path.join(root, "w5"), "m5", store);
    const base = await commitFiles(repo, null, { "a.txt": "a\n" });
    const dir = path.join(root, "ws", "m5", "w5-0");
    const co = await prepareCheckout({ repo, dir, base, slot: "w5-0" });
    await mkdir(path.join(dir, ".git"));
    await writeFile(path.join(dir, ".git", "HEAD"), "ref: refs/heads/evil\n");
    await co.release();
    expect(await stat(dir).catch(() => null)).toBeNull();
    await prepareCheckout({ repo, dir, base, slot: "w5-0" });
    expect(await files(dir)).toEqual(["a.txt"]);
  });

  it("two slots of one repository work side by side without seeing each other", async () => {
    const repo = await MissionRepo.open(path.join(root, "w4"), "m4", store);
    const base = await commitFiles(repo, null, { "shared.txt": "s\n" });
    await repo.publish(base, []);
    const a = await prepareCheckout({
      repo,
      dir: path.join(root, "ws", "m4", "w4-0"),
      base,
      slot: "w4-0",
    });
    const b = await prepareCheckout({
      repo,
      dir: path.join(root, "ws", "m4", "w4-1"),
      base,
      slot: "w4-1",
    });
    await writeFile(path.join(a.dir, "a.txt"), "a\n");
    await writeFile(path.join(b.dir, "b.txt"), "b\n");
    const [ca, cb] = await Promise.all([a.commitAttempt(req("ta")), b.commitAttempt(req("tb"))]);
    expect(ca!.files.map((f) => f.path)).toEqual(["a.txt"]);
    expect(cb!.files.map((f) => f.path)).toEqual(["b.txt"]);
    expect(await store.has("m4", ca!.commit)).toBe(true);
    expect(await store.has("m4", cb!.commit)).toBe(true);
  });

  it("the commit message is one subject line and the trailers", () => {
    expect(commitMessage({ title: "Fix\nthe bug", trailers: { "Squad-Task": "t\n1" } })).toBe(
      "Fix the bug\n\nSquad-Task: t 1\n",
    );
  });
});

/** The git commands Squad's code ran while `fn` ran (a `git` first on PATH that notes its arguments). */
async function gitCalls(fn: () => Promise<void>): Promise<string[]> {
  const bin = await mkdtemp(path.join(tmpdir(), "squad-git-spy-"));
  const log = path.join(bin, "calls");
  await writeFile(log, "");
  await writeFile(
    path.join(bin, "git"),
    `#!/bin/sh\nfor a in "$@"; do case "$a" in -c|*=*) ;; *) printf '%s ' "$a" >>${log};; esac; done\necho >>${log}\nexec /usr/bin/git "$@"\n`,
    { mode: 0o755 },
  );
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved}`;
  try {
    await fn();
  } finally {
    process.env.PATH = saved;
  }
  const calls = (await readFile(log, "utf8")).split("\n").filter(Boolean);
  await rm(bin, { recursive: true, force: true });
  return calls;
}

describe("a slot reused with what its last attempt proved", () => {
  const limits = { maxFileBytes: 1024 * 1024 };
  /** One attempt: prepare, let the task work, walk, commit, release. */
  async function attempt(
    opts: {
      repo: MissionRepo;
      dir: string;
      base: string;
      slot: string;
      known: KnownCheckout | null;
    },
    task: (dir: string) => Promise<void> = () => Promise.resolve(),
  ): Promise<{ co: Checkout; changes: Awaited<ReturnType<Checkout["commitAttempt"]>> }> {
    const co = await prepareCheckout(opts);
    await task(co.dir);
    const walk = await co.inspect(limits);
    expect(walk.problems).toEqual([]);
    const changes = await co.commitAttempt(req("t"), walk);
    await co.release();
    return { co, changes };
  }

  it("a no-op attempt on the base its slot proved runs no git; whatever an attempt leaves, the next sees exactly its base", async () => {
    const repo = await MissionRepo.open(path.join(root, "r1"), "r1", store);
    const base = await commitFiles(repo, null, {
      ".gitignore": "*.log\n",
      "a.txt": "aaa\n",
      "src/b.txt": "b\n",
    });
    await repo.publish(base, []);
    const baseFiles = [".gitignore", "a.txt", "src", "src/b.txt"];
    const leaves: Record<string, (dir: string) => Promise<void>> = {
      "an ignored file": (d) => writeFile(path.join(d, "debug.log"), "x"),
      "an empty directory": (d) => mkdir(path.join(d, "src", "empty")),
      "an untracked file": (d) => writeFile(path.join(d, "src", "new.txt"), "n"),
      "a file rewritten to the same size, its mtime set back": async (d) => {
        const f = path.join(d, "a.txt");
        const before = await stat(f);
        await writeFile(f, "zzz\n");
        await utimes(f, before.atime, before.mtime);
      },
      "a file removed": (d) => rm(path.join(d, "src", "b.txt")),
    };
    for (const [what, task] of Object.entries(leaves)) {
      const dir = path.join(root, "ws", "r1", what.replace(/\W+/g, "-"));
      const slot = path.basename(dir);
      const first = await attempt({ repo, dir, base, slot, known: null });
      expect(first.changes).toBeNull();
      const proved = first.co.known();
      expect(proved).toMatchObject({ commit: base, onlyIndexed: true });
      expect(proved!.snapshot).not.toBeNull();
      let next: KnownCheckout | null = null;
      const calls = await gitCalls(async () => {
        const again = await attempt({ repo, dir, base, slot, known: proved });
        expect(again.changes).toBeNull();
        next = again.co.known();
      });
      expect(calls).toEqual([]);
      // The attempt that leaves something, then its slot's next attempt on the same base.
      const left = await attempt({ repo, dir, base, slot, known: next }, task);
      const after = await prepareCheckout({ repo, dir, base, slot, known: left.co.known() });
      expect(await files(dir), what).toEqual(baseFiles);
      expect(await readFile(path.join(dir, "a.txt"), "utf8"), what).toBe("aaa\n");
      expect(await readFile(path.join(dir, "src", "b.txt"), "utf8"), what).toBe("b\n");
      await after.release();
    }
  });

  it("a slot holding only its commit's files moves to the next base by read-tree alone, or stays as it is on that commit", async () => {
    const repo = await MissionRepo.open(path.join(root, "r2"), "r2", store);
    const b1 = await commitFiles(repo, null, { "a.txt": "1\n", "d/x.txt": "x\n" });
    await repo.publish(b1, []);
    const dir = path.join(root, "ws", "r2", "w-0");
    const slot = "w-0";
    const done = await attempt({ repo, dir, base: b1, slot, known: null }, async (d) => {
      await rm(path.join(d, "d"), { recursive: true });
      await writeFile(path.join(d, "n.txt"), "n\n");
    });
    const c = done.changes!.commit;
    const proved = done.co.known();
    expect(proved).toMatchObject({ commit: c, onlyIndexed: true });
    // The merged head is the commit itself: nothing to do.
    const same = await gitCalls(async () => {
      const co = await prepareCheckout({ repo, dir, base: c, slot, known: proved });
      expect(await files(dir)).toEqual(["a.txt", "n.txt"]);
      await co.release();
    });
    expect(same).toEqual([]);
    // Another head (say another task's merge): one read-tree, no clean.
    const b2 = await commitFiles(repo, b1, { "a.txt": "2\n" });
    const moved = await gitCalls(async () => {
      await prepareCheckout({ repo, dir, base: b2, slot, known: proved });
    });
    expect(await files(dir)).toEqual(["a.txt", "d", "d/x.txt"]);
    expect(await readFile(path.join(dir, "a.txt"), "utf8")).toBe("2\n");
    expect(moved.filter((c) => c.startsWith("read-tree"))).toHaveLength(1);
    expect(moved.some((c) => c.startsWith("clean"))).toBe(false);
  });

  it("what the slot proved no longer holds when its index changed, or with reuse off: reset in full", async () => {
    const repo = await MissionRepo.open(path.join(root, "r3"), "r3", store);
    const base = await commitFiles(repo, null, { "a.txt": "a\n" });
    await repo.publish(base, []);
    const dir = path.join(root, "ws", "r3", "w-0");
    const slot = "w-0";
    const first = await attempt({ repo, dir, base, slot, known: null });
    const proved = first.co.known()!;
    // The directory changed after the walk, and the index with it (not this slot's doing).
    await writeFile(path.join(dir, "stray.txt"), "s");
    await rm(indexFileOf(repo, slot));
    await prepareCheckout({ repo, dir, base, slot, known: proved });
    expect(await files(dir)).toEqual(["a.txt"]);
    const second = await attempt({ repo, dir, base, slot, known: null });
    await writeFile(path.join(dir, "stray.txt"), "s");
    const calls = await gitCalls(async () => {
      await prepareCheckout({ repo, dir, base, slot, known: second.co.known(), reuse: false });
    });
    expect(await files(dir)).toEqual(["a.txt"]);
    expect(calls.some((c) => c.startsWith("clean"))).toBe(true);
  });

  it("a checkout the tree-check refuses proves nothing: it is removed, the next attempt starts afresh", async () => {
    const repo = await MissionRepo.open(path.join(root, "r4"), "r4", store);
    const base = await commitFiles(repo, null, { "a.txt": "a\n" });
    await repo.publish(base, []);
    const dir = path.join(root, "ws", "r4", "w-0");
    const slot = "w-0";
    const first = await attempt({ repo, dir, base, slot, known: null });
    const co = await prepareCheckout({ repo, dir, base, slot, known: first.co.known() });
    await mkdir(path.join(dir, ".git"));
    await writeFile(path.join(dir, ".git", "HEAD"), "ref: refs/heads/evil\n");
    const walk = await co.inspect(limits);
    expect(walk.problems.map((p) => p.rel)).toEqual([".git"]);
    await co.release();
    expect(co.known()).toBeNull();
    expect(await stat(dir).catch(() => null)).toBeNull();
    await prepareCheckout({ repo, dir, base, slot, known: null });
    expect(await files(dir)).toEqual(["a.txt"]);
  });
});
