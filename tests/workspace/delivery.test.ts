import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { BadInputError } from "../../src/errors.ts";
import type { CommitId } from "../../src/schema/index.ts";
import { openBundleStore, type BundleStore } from "../../src/workspace/bundle-store.ts";
import { deliverBranch, exportClone, pushBranch } from "../../src/workspace/delivery.ts";
import { makeMissionBase } from "../../src/workspace/mission-base.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { git, makeUserRepo, repoState } from "./git-fixtures.ts";
import { startGitDaemon, startGitHttp, type GitServer } from "./git-servers.ts";
import { commitFiles } from "./repo-fixtures.ts";

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
  nc = await connectBus({ servers: server.url, name: "delivery-test" });
  store = await openBundleStore(nc, LIMITS);
  root = await mkdtemp(path.join(tmpdir(), "squad-delivery-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/**
 * A mission on the user's repository: base = its HEAD (made by the submitter), two task
 * commits made and published by a worker's cache, and a fresh cache of the CLI that has
 * fetched the head from the object store only.
 */
async function missionOnRepo(opts: { gitRepo: boolean }) {
  const id = `m-deliver-${++n}`;
  const dir = path.join(root, `user-${n}`);
  if (opts.gitRepo) {
    await makeUserRepo(dir, [{ "README.md": "# app\n", "src/app.txt": "v1\n" }]);
  } else {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "README.md"), "# plain\n");
  }
  const submitter = await MissionRepo.open(path.join(root, "submitter"), id, store);
  const workspace = await makeMissionBase(dir, submitter);
  const worker = await MissionRepo.open(path.join(root, "worker"), id, store);
  await worker.ensure(workspace.base);
  const trailers = (task: string) =>
    `\n\nSquad-Mission: ${id}\nSquad-Task: ${task}\nSquad-Attempt: 1\nSquad-Agent: builder\n`;
  const c1 = (await commitFiles(
    worker,
    workspace.base,
    { "one.txt": "1\n" },
    `Task one${trailers("t1")}`,
  )) as CommitId;
  await worker.publish(c1, [workspace.base]);
  const head = (await commitFiles(
    worker,
    c1,
    { "two.txt": "2\n" },
    `Task two${trailers("t2")}`,
  )) as CommitId;
  await worker.publish(head, [c1]);
  const cli = await MissionRepo.open(path.join(root, "cli"), id, store);
  await cli.ensure(head);
  return { id, dir, workspace, cli, commits: [c1, head] };
}

async function refusal(p: Promise<unknown>): Promise<BadInputError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadInputError);
  return err as BadInputError;
}

describe("deliverBranch", () => {
  it("creates squad/<mission> at the head; HEAD, index and working tree untouched", async () => {
    const m = await missionOnRepo({ gitRepo: true });
    // The user goes on working meanwhile: a modified file, a staged one, an untracked one.
    await writeFile(path.join(m.dir, "src/app.txt"), "edited by the user\n");
    await writeFile(path.join(m.dir, "staged.txt"), "staged\n");
    await git(m.dir, "add", "staged.txt");
    await writeFile(path.join(m.dir, "scratch.txt"), "untracked\n");
    const before = await repoState(m.dir);
    const branchesBefore = await git(m.dir, "for-each-ref", "--format=%(refname) %(objectname)");

    const d = await deliverBranch({
      repo: m.cli,
      missionId: m.id,
      head: m.commits[1]!,
      repoDir: m.dir,
    });
    expect(d).toEqual({
      branch: `squad/${m.id}`,
      commit: m.commits[1],
      where: m.dir,
      already: false,
    });

    expect(await repoState(m.dir)).toEqual(before);
    expect(await readFile(path.join(m.dir, "src/app.txt"), "utf8")).toBe("edited by the user\n");
    expect(await git(m.dir, "rev-parse", `squad/${m.id}`)).toBe(m.commits[1]);
    // One ref more, nothing else moved.
    const after = await git(m.dir, "for-each-ref", "--format=%(refname) %(objectname)");
    expect(after.split("\n").sort()).toEqual(
      [...branchesBefore.split("\n"), `refs/heads/squad/${m.id} ${m.commits[1]}`].sort(),
    );
    // The branch holds the user's history, then one commit per task with its trailers.
    const log = await git(
      m.dir,
      "log",
      "--format=%s|%(trailers:key=Squad-Task,valueonly,separator=)",
      `squad/${m.id}`,
    );
    expect(log.split("\n").filter(Boolean)).toEqual(["Task two|t2", "Task one|t1", "commit 1|"]);
  });

  it("never overwrites an existing branch (one at the head already is left as it is)", async () => {
    const m = await missionOnRepo({ gitRepo: true });
    await git(m.dir, "branch", `squad/${m.id}`, m.workspace.base);
    const err = await refusal(
      deliverBranch({ repo: m.cli, missionId: m.id, head: m.commits[1]!, repoDir: m.dir }),
    );
    expect(err.message).toContain(`branch squad/${m.id} already exists`);
    expect(err.message).toContain("never");
    expect(await git(m.dir, "rev-parse", `squad/${m.id}`)).toBe(m.workspace.base);

    await git(m.dir, "branch", "-D", "-q", `squad/${m.id}`);
    await deliverBranch({ repo: m.cli, missionId: m.id, head: m.commits[1]!, repoDir: m.dir });
    const again = await deliverBranch({
      repo: m.cli,
      missionId: m.id,
      head: m.commits[1]!,
      repoDir: m.dir,
    });
    expect(again.already).toBe(true);
  });

  it("a workspace that is not a git repository: says to use swarm export", async () => {
    const m = await missionOnRepo({ gitRepo: false });
    expect(m.workspace.source).toBe("directory");
    const err = await refusal(
      deliverBranch({ repo: m.cli, missionId: m.id, head: m.commits[1]!, repoDir: m.dir }),
    );
    expect(err.message).toContain(`swarm export ${m.id} DIR`);
  });
});

describe("exportClone", () => {
  it("writes a new repository on squad/<mission>, checked out at the head, with history", async () => {
    const m = await missionOnRepo({ gitRepo: false });
    const dir = path.join(root, `export-${m.id}`);
    const d = await exportClone({ repo: m.cli, missionId: m.id, head: m.commits[1]!, dir });
    expect(d.commit).toBe(m.commits[1]);
    expect(await git(dir, "symbolic-ref", "HEAD")).toBe(`refs/heads/squad/${m.id}`);
    expect(await git(dir, "status", "--porcelain")).toBe("");
    expect(await readFile(path.join(dir, "two.txt"), "utf8")).toBe("2\n");
    expect(await readFile(path.join(dir, "README.md"), "utf8")).toBe("# plain\n");
    expect(await git(dir, "rev-list", "--count", "HEAD")).toBe("3");
    expect(await git(dir, "remote")).toBe("");
    // Not into a directory that has something in it.
    const err = await refusal(
      exportClone({ repo: m.cli, missionId: m.id, head: m.commits[1]!, dir }),
    );
    expect(err.message).toContain("not empty");
  });
});

describe("pushBranch", () => {
  it("pushes squad/<mission> to a git daemon remote, never over an existing branch", async () => {
    const m = await missionOnRepo({ gitRepo: true });
    const base = path.join(root, `daemon-${m.id}`);
    await mkdir(path.join(base, "remote.git"), { recursive: true });
    await git(path.join(base, "remote.git"), "init", "-q", "--bare");
    let daemon: GitServer | null = null;
    try {
      daemon = await startGitDaemon(base, "remote.git");
      await git(m.dir, "remote", "add", "origin", daemon.url("remote.git"));
      const before = await repoState(m.dir);
      const d = await pushBranch({
        repo: m.cli,
        missionId: m.id,
        head: m.commits[1]!,
        remote: "origin",
        fromDir: m.dir,
      });
      expect(d.branch).toBe(`squad/${m.id}`);
      expect(
        await git(path.join(base, "remote.git"), "rev-parse", `refs/heads/squad/${m.id}`),
      ).toBe(m.commits[1]);
      expect(await repoState(m.dir)).toEqual(before);
      // The remote's branch exists now: a second push is refused, the branch stays.
      const err = await refusal(
        pushBranch({
          repo: m.cli,
          missionId: m.id,
          head: m.commits[0]!,
          remote: "origin",
          fromDir: m.dir,
        }),
      );
      expect(err.message).toContain(`branch squad/${m.id} already exists on origin`);
      expect(
        await git(path.join(base, "remote.git"), "rev-parse", `refs/heads/squad/${m.id}`),
      ).toBe(m.commits[1]);
      // No repository to push from (a plain-directory workspace): the cache pushes, to a URL.
      const plain = await missionOnRepo({ gitRepo: false });
      await pushBranch({
        repo: plain.cli,
        missionId: plain.id,
        head: plain.commits[1]!,
        remote: daemon.url("remote.git"),
        fromDir: null,
      });
      expect(
        await git(path.join(base, "remote.git"), "rev-parse", `refs/heads/squad/${plain.id}`),
      ).toBe(plain.commits[1]);
    } finally {
      await daemon?.stop();
    }
  });

  it("uses git's own credentials (a helper, or the URL) and never shows the secret", async () => {
    const secret = "s3cr3t-Pa55";
    const m = await missionOnRepo({ gitRepo: true });
    const project = path.join(root, `http-${m.id}`);
    await mkdir(path.join(project, "remote.git"), { recursive: true });
    await git(path.join(project, "remote.git"), "init", "-q", "--bare");
    const httpd = await startGitHttp(project, "ada", secret);
    const saved = process.env.GIT_CONFIG_GLOBAL;
    try {
      const url = httpd.url("remote.git");
      // Without a credential git is refused, and says so without prompting.
      const noCred = await refusal(
        pushBranch({
          repo: m.cli,
          missionId: m.id,
          head: m.commits[1]!,
          remote: url,
          fromDir: m.dir,
        }),
      );
      expect(noCred.message).toMatch(/refused|authentication|username/i);

      // The credential in the URL: it works, and the secret is in no message.
      const withUrl = url.replace("http://", `http://ada:${secret}@`);
      const d = await pushBranch({
        repo: m.cli,
        missionId: m.id,
        head: m.commits[1]!,
        remote: withUrl,
        fromDir: m.dir,
      });
      expect(JSON.stringify(d)).not.toContain(secret);
      expect(d.where).toContain("***@");
      // Again at the same commit: nothing to do; at another: refused, without the secret.
      const same = await pushBranch({
        repo: m.cli,
        missionId: m.id,
        head: m.commits[1]!,
        remote: withUrl,
        fromDir: m.dir,
      });
      expect(same.already).toBe(true);
      const again = await refusal(
        pushBranch({
          repo: m.cli,
          missionId: m.id,
          head: m.commits[0]!,
          remote: withUrl,
          fromDir: m.dir,
        }),
      );
      expect(again.message).toContain("already exists");
      expect(again.message).not.toContain(secret);
      const wrong = await refusal(
        pushBranch({
          repo: m.cli,
          missionId: `${m.id}-x`,
          head: m.commits[1]!,
          remote: url.replace("http://", "http://ada:wrong-Pa55@"),
          fromDir: m.dir,
        }),
      );
      expect(wrong.message).not.toContain("wrong-Pa55");

      // A credential helper in the user's git configuration: the URL carries nothing.
      const config = path.join(root, `gitconfig-${m.id}`);
      await writeFile(
        config,
        `[credential]\n\thelper = "!f() { echo username=ada; echo password=${secret}; }; f"\n`,
      );
      process.env.GIT_CONFIG_GLOBAL = config;
      const other = await missionOnRepo({ gitRepo: true });
      const viaHelper = await pushBranch({
        repo: other.cli,
        missionId: other.id,
        head: other.commits[1]!,
        remote: url,
        fromDir: other.dir,
      });
      expect(viaHelper.where).toBe(url);
      expect(
        await git(path.join(project, "remote.git"), "rev-parse", `refs/heads/squad/${other.id}`),
      ).toBe(other.commits[1]);
      expect(httpd.requests()).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.GIT_CONFIG_GLOBAL;
      else process.env.GIT_CONFIG_GLOBAL = saved;
      await httpd.stop();
    }
  });
});
