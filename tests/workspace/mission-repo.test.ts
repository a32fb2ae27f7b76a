import { mkdtemp, readdir, rm, writeFile, mkdir, utimes } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import {
  bundleObjectName,
  openBundleStore,
  BundleTooLargeError,
  type BundleStore,
} from "../../src/workspace/bundle-store.ts";
import { MissionRepo, bundleRef } from "../../src/workspace/mission-repo.ts";
import { runGit, runGitBytes } from "../../src/workspace/git-command.ts";
import { WorkspaceError } from "../../src/workspace/workspace-errors.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { commitFiles } from "./repo-fixtures.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let store: BundleStore;
let root: string;

const LIMITS = {
  maxBytes: 64 * 1024 * 1024,
  maxAgeS: 3600,
  bundleLimitBytes: 256 * 1024,
  replicas: 1,
};

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "mission-repo-test" });
  store = await openBundleStore(nc, LIMITS);
  root = await mkdtemp(path.join(tmpdir(), "squad-mission-repo-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Two processes' caches: different roots, one object store. */
async function twoRepos(mission: string) {
  const a = await MissionRepo.open(path.join(root, "a"), mission, store);
  const b = await MissionRepo.open(path.join(root, "b"), mission, store);
  return { a, b };
}

describe("MissionRepo", () => {
  it("ships a commit from one cache to another through the object store", async () => {
    const { a, b } = await twoRepos("m-ship");
    expect(a.gitDir).not.toBe(b.gitDir);
    const base = await commitFiles(a, null, { "README.md": "hello\n" });
    await a.publish(base, []);
    expect(await store.has("m-ship", base)).toBe(true);
    expect(await b.has(base)).toBe(false);
    await b.ensure(base);
    expect(await b.has(base)).toBe(true);
    expect(await b.git(["show", `${base}:README.md`])).toBe("hello");
  });

  it("fetches a chain of three incremental bundles, prerequisites first", async () => {
    const { a, b } = await twoRepos("m-chain");
    const c0 = await commitFiles(a, null, { "a.txt": "0\n" });
    await a.publish(c0, []);
    const c1 = await commitFiles(a, c0, { "a.txt": "1\n" });
    await a.publish(c1, [c0]);
    const c2 = await commitFiles(a, c1, { "b.txt": "2\n" });
    await a.publish(c2, [c1]);
    const c3 = await commitFiles(a, c2, { "a.txt": null, "c.txt": "3\n" });
    await a.publish(c3, [c2]);
    // Each increment needs only its parent.
    for (const [c, p] of [
      [c1, c0],
      [c2, c1],
      [c3, c2],
    ] as const) {
      const bytes = (await store.get("m-chain", c))!;
      expect(Buffer.from(bytes).toString("latin1")).toContain(`-${p}`);
    }
    await b.ensure(c3);
    for (const c of [c0, c1, c2, c3]) expect(await b.has(c)).toBe(true);
    expect((await b.log(null, c3)).map((e) => e.commit)).toEqual([c3, c2, c1, c0]);
    expect((await b.log(c1, c3)).map((e) => e.commit)).toEqual([c3, c2]);
    const changes = await b.diffChanges(c0, c3);
    expect(changes.files.map((f) => [f.path, f.status])).toEqual([
      ["a.txt", "deleted"],
      ["b.txt", "added"],
      ["c.txt", "added"],
    ]);
    expect(changes).toMatchObject({ base: c0, commit: c3, additions: 2, deletions: 1 });
  });

  it("publishing twice uploads once, and several slots may ensure at once", async () => {
    const { a, b } = await twoRepos("m-twice");
    const c0 = await commitFiles(a, null, { "x.txt": "x\n" });
    await a.publish(c0, []);
    await a.publish(c0, []);
    const c1 = await commitFiles(a, c0, { "y.txt": "y\n" });
    await a.publish(c1, [c0]);
    await Promise.all([b.ensure(c1), b.ensure(c1), b.ensure(c0), b.ensure(c1)]);
    expect(await b.has(c1)).toBe(true);
    // the same instance for the same cache repository (one mutex per repository)
    expect(await MissionRepo.open(path.join(root, "b"), "m-twice", store)).toBe(b);
  });

  it("a bundle missing from the store is a WorkspaceError naming mission and commit", async () => {
    const { a, b } = await twoRepos("m-missing");
    const c0 = await commitFiles(a, null, { "x.txt": "x\n" });
    const err = await b.ensure(c0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkspaceError);
    expect((err as Error).message).toContain("m-missing");
    expect((err as Error).message).toContain(c0);
    expect((err as Error).message).toContain(bundleObjectName("m-missing", c0));
    // a prerequisite missing half way down the chain
    await a.publish(c0, []);
    const c1 = await commitFiles(a, c0, { "y.txt": "y\n" });
    await a.publish(c1, [c0]);
    await store.removeMission("m-missing");
    const c2 = await commitFiles(a, c1, { "z.txt": "z\n" });
    await expect(a.publish(c2, [c1])).rejects.toThrow(/needs commit .* no bundle of its own/);
  });

  it("refuses a forged bundle whose ref is not the commit it is named for", async () => {
    const { a, b } = await twoRepos("m-forged");
    const good = await commitFiles(a, null, { "x.txt": "good\n" });
    const evil = await commitFiles(a, null, { "x.txt": "evil\n" });
    await a.setRef(bundleRef(good), evil);
    const forged = await runGitBytes(["bundle", "create", "-q", "-", bundleRef(good)], {
      gitDir: a.gitDir,
    });
    await store.put("m-forged", good, forged);
    const err = await b.ensure(good).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkspaceError);
    expect((err as Error).message).toMatch(/refused the bundle .* carries refs\/squad\/bundle\//);
    expect(await b.has(evil)).toBe(false);
    // ... and one under another ref name
    const other = await commitFiles(a, null, { "o.txt": "o\n" });
    await a.setRef("refs/heads/main", other);
    await store.put(
      "m-forged",
      other,
      await runGitBytes(["bundle", "create", "-q", "-", "refs/heads/main"], { gitDir: a.gitDir }),
    );
    await expect(b.ensure(other)).rejects.toThrow(/must carry only/);
    // ... and garbage
    const junk = await commitFiles(a, null, { "j.txt": "j\n" });
    await store.put("m-forged", junk, new TextEncoder().encode("not a bundle at all\n\n"));
    await expect(b.ensure(junk)).rejects.toThrow(/refused the bundle .* not a git bundle/);
  });

  it("a bundle over the per-bundle limit fails with the sizes and the variable to raise", async () => {
    const { a } = await twoRepos("m-big");
    // incompressible content over 256 KiB
    const big = randomBytes(400 * 1024).toString("base64");
    const c0 = await commitFiles(a, null, { "big.bin": big });
    const err = await a.publish(c0, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleTooLargeError);
    expect((err as Error).message).toMatch(
      /over the limit of 256\.0 KiB .*SWARM_BUNDLE_LIMIT_BYTES/,
    );
    expect(await store.has("m-big", c0)).toBe(false);
  });

  it("setRef / readRef; removeMission deletes only that mission's bundles", async () => {
    const { a } = await twoRepos("m-refs");
    const c0 = await commitFiles(a, null, { "x.txt": "x\n" });
    expect(await a.readRef("refs/squad/t1/1")).toBeNull();
    await a.setRef("refs/squad/t1/1", c0);
    expect(await a.readRef("refs/squad/t1/1")).toBe(c0);
    await a.publish(c0, []);
    const other = await MissionRepo.open(path.join(root, "a"), "m-refs-other", store);
    const o0 = await commitFiles(other, null, { "x.txt": "x\n" });
    await other.publish(o0, []);
    expect(await store.removeMission("m-refs")).toBe(1);
    expect(await store.has("m-refs", c0)).toBe(false);
    expect(await store.has("m-refs-other", o0)).toBe(true);
  });

  it("removes lock files and temp bundles a killed process left behind", async () => {
    const cacheRoot = path.join(root, "crash");
    const first = await MissionRepo.open(cacheRoot, "m-crash", store);
    const c0 = await commitFiles(first, null, { "x.txt": "x\n" });
    await first.publish(c0, []);
    await first.setRef("refs/squad/t1/1", c0);
    const old = new Date(Date.now() - 3_600_000);
    const leftovers = [
      path.join(first.gitDir, "squad-index", "w1-0.lock"),
      path.join(first.gitDir, "refs", "squad", "t1", "1.lock"),
      path.join(first.gitDir, "packed-refs.lock"),
      path.join(first.gitDir, "squad-tmp", "half.bundle"),
    ];
    for (const f of leftovers) {
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, "");
      await utimes(f, old, old);
    }
    // git itself is blocked by the stale lock...
    await expect(
      runGit(["update-ref", "refs/squad/t1/1", c0], { gitDir: first.gitDir }),
    ).rejects.toThrow(/lock/);
    // ... until a new process (a fresh module: no cached instance) opens the repository.
    const gitDir = first.gitDir;
    // A query string makes vitest load the module again: a fresh instance map, as in a new process.
    const fresh = "../../src/workspace/mission-repo.ts?fresh=1";
    const { MissionRepo: Fresh } = (await import(fresh)) as { MissionRepo: typeof MissionRepo };
    const second = await Fresh.open(cacheRoot, "m-crash", store);
    expect(second.gitDir).toBe(gitDir);
    expect(await readdir(path.join(gitDir, "squad-tmp"))).toEqual([]);
    expect(await readdir(path.join(gitDir, "squad-index"))).toEqual([]);
    await second.setRef("refs/squad/t1/1", c0);
    await second.setRef("refs/squad/t2/1", c0);
  });
});
