import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { BadInputError } from "../../src/errors.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { runGit } from "../../src/workspace/git-command.ts";
import {
  BASE_REF,
  checkWorkspace,
  dirtyPaths,
  makeMissionBase,
} from "../../src/workspace/mission-base.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { git, makeUserRepo, repoState } from "./git-fixtures.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
let store: BundleStore;
let root: string;
let n = 0;

const LIMITS = {
  maxBytes: 64 * 1024 * 1024,
  maxAgeS: 3600,
  bundleLimitBytes: 8 << 20,
  replicas: 1,
};

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "mission-base-test" });
  store = await openBundleStore(nc, LIMITS);
  root = await mkdtemp(path.join(tmpdir(), "squad-mission-base-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A fresh mission: the submitter's cache repo, and another process's (what a worker sees). */
async function mission() {
  const id = `m-base-${++n}`;
  return {
    id,
    submitter: await MissionRepo.open(path.join(root, "cli"), id, store),
    worker: await MissionRepo.open(path.join(root, "worker"), id, store),
  };
}

async function refusal(p: Promise<unknown>): Promise<BadInputError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadInputError);
  return err as BadInputError;
}

describe("makeMissionBase", () => {
  it("a git repository: its HEAD with history, uploaded so another cache can fetch it", async () => {
    const dir = path.join(root, "repo-clean");
    const shas = await makeUserRepo(dir, [
      { "a.txt": "1\n" },
      { "b.txt": "2\n" },
      { "a.txt": "3\n" },
    ]);
    const before = await repoState(dir);
    const m = await mission();
    const ws = await makeMissionBase(dir, m.submitter);
    expect(ws).toEqual({ base: shas[2], source: "git", path: dir, branch: "main" });
    expect(await m.submitter.readRef(BASE_REF)).toBe(shas[2]);
    expect(await store.has(m.id, shas[2] as never)).toBe(true);
    // Another process's cache gets the base and all its history from the store alone.
    await m.worker.ensure(ws.base);
    const history = await m.worker.git(["rev-list", ws.base]);
    expect(history.split("\n")).toEqual([...shas].reverse());
    // The user's repository was only read.
    expect(await repoState(dir)).toEqual(before);
  });

  it("a detached HEAD: that commit, branch null", async () => {
    const dir = path.join(root, "repo-detached");
    const shas = await makeUserRepo(dir, [{ "a.txt": "1\n" }, { "a.txt": "2\n" }]);
    await git(dir, "checkout", "-q", "--detach", shas[0]!);
    const ws = await makeMissionBase(dir, (await mission()).submitter);
    expect(ws).toEqual({ base: shas[0], source: "git", path: dir, branch: null });
  });

  it("refuses uncommitted changes, naming them and saying to commit or stash them", async () => {
    const dir = path.join(root, "repo-dirty");
    await makeUserRepo(dir, [{ "a.txt": "1\n", ".gitignore": "build/\n" }]);
    await writeFile(path.join(dir, "a.txt"), "changed\n");
    await writeFile(path.join(dir, "new file.txt"), "untracked\n");
    await mkdir(path.join(dir, "build"));
    await writeFile(path.join(dir, "build/out.o"), "ignored\n");
    const err = await refusal(makeMissionBase(dir, (await mission()).submitter));
    expect(err.message).toContain("uncommitted changes");
    expect(err.message).toContain("a.txt");
    expect(err.message).toContain("new file.txt");
    expect(err.message).not.toContain("out.o");
    expect(err.message).toMatch(/commit .*or stash/i);
    expect(err.message).toContain("git stash -u");
    // Staged only is dirty too; ignored files alone are not.
    await git(dir, "checkout", "-q", "--", "a.txt");
    await rm(path.join(dir, "new file.txt"));
    await writeFile(path.join(dir, "c.txt"), "staged\n");
    await git(dir, "add", "c.txt");
    expect((await refusal(checkWorkspace(dir))).message).toContain("c.txt");
    await git(dir, "rm", "-q", "--cached", "c.txt");
    await rm(path.join(dir, "c.txt"));
    expect((await checkWorkspace(dir)).kind).toBe("git");
  });

  it("refuses a bare repository, a file, a missing path, a repository without commits, a shallow clone", async () => {
    const bare = path.join(root, "bare.git");
    await mkdir(bare);
    await git(bare, "init", "-q", "--bare");
    expect((await refusal(checkWorkspace(bare))).message).toContain("bare git repository");
    const file = path.join(root, "a-file.txt");
    await writeFile(file, "x\n");
    expect((await refusal(checkWorkspace(file))).message).toContain("is not a directory");
    expect((await refusal(checkWorkspace(path.join(root, "nowhere")))).message).toContain(
      "does not exist",
    );
    const empty = path.join(root, "repo-unborn");
    await mkdir(empty);
    await git(empty, "init", "-q");
    expect((await refusal(checkWorkspace(empty))).message).toContain("without any commit");
    const shallow = path.join(root, "repo-shallow");
    await git(root, "clone", "-q", "--depth=1", `file://${path.join(root, "repo-clean")}`, shallow);
    expect((await refusal(checkWorkspace(shallow))).message).toContain("git fetch --unshallow");
    const dotgit = path.join(root, "repo-clean", ".git");
    expect((await refusal(checkWorkspace(dotgit))).message).toContain(".git directory");
  });

  it("a plain directory: a first commit of its files, node_modules and .git left out", async () => {
    const dir = path.join(root, "plain");
    await mkdir(path.join(dir, "src"), { recursive: true });
    await mkdir(path.join(dir, "node_modules/x"), { recursive: true });
    await mkdir(path.join(dir, "vendor/lib"), { recursive: true });
    await writeFile(path.join(dir, "src/main.txt"), "main\n");
    await writeFile(path.join(dir, ".gitignore"), "*.log\n");
    await writeFile(path.join(dir, "debug.log"), "kept: a plain directory's files are all taken\n");
    await writeFile(path.join(dir, "node_modules/x/index.js"), "junk\n");
    await symlink("src/main.txt", path.join(dir, "link"));
    // A nested repository inside a plain directory: its files, not its .git.
    await makeUserRepo(path.join(dir, "vendor/lib"), [{ "lib.txt": "lib\n" }]);
    const m = await mission();
    const ws = await makeMissionBase(dir, m.submitter);
    expect(ws.source).toBe("directory");
    expect(ws.path).toBe(dir);
    expect(ws).not.toHaveProperty("branch");
    await m.worker.ensure(ws.base);
    const files = (await m.worker.git(["ls-tree", "-r", "--name-only", ws.base])).split("\n");
    expect(files.sort()).toEqual(
      [".gitignore", "debug.log", "link", "src/main.txt", "vendor/lib/lib.txt"].sort(),
    );
    expect(await m.worker.git(["cat-file", "-p", `${ws.base}:link`])).toBe("src/main.txt");
    expect(await m.worker.git(["rev-list", "--count", ws.base])).toBe("1");
    expect(await m.worker.git(["log", "-1", "--format=%an <%ae>", ws.base])).toBe(
      "squad <squad@squad.local>",
    );
  });

  it("a subdirectory of a repository is a plain directory (its files at the top)", async () => {
    const dir = path.join(root, "outer");
    await makeUserRepo(dir, [{ "top.txt": "t\n", "sub/inner.txt": "i\n" }]);
    const ws = await makeMissionBase(path.join(dir, "sub"), (await mission()).submitter);
    expect(ws.source).toBe("directory");
  });

  it("no workspace: an empty first commit", async () => {
    const m = await mission();
    const ws = await makeMissionBase(null, m.submitter);
    expect(ws).toEqual({ base: ws.base, source: "empty", path: null });
    await m.worker.ensure(ws.base);
    expect(await m.worker.git(["ls-tree", "-r", ws.base])).toBe("");
    expect(await runGit(["rev-list", "--count", ws.base], { gitDir: m.worker.gitDir })).toBe("1");
  });
});

describe("dirtyPaths", () => {
  it("reads porcelain v1 -z, a rename's origin skipped", () => {
    expect(dirtyPaths(" M a.txt\0?? b c.txt\0R  new.txt\0old.txt\0")).toEqual([
      "a.txt",
      "b c.txt",
      "new.txt",
    ]);
    expect(dirtyPaths("")).toEqual([]);
  });
});
