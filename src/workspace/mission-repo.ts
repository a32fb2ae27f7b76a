/**
 * A process's local cache of one mission's git repository: a bare
 * repository at `<cacheRoot>/<mission>.git` that holds the commits this
 * process has fetched (bundles from the object store) or made. Commits
 * travel only as bundles named for the commit they carry; integrity is
 * git's own (a bundle must carry exactly `refs/squad/bundle/<commit>` at
 * that commit, and index-pack hashes every object).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { BUNDLE_BUCKET, bundleObjectName, type BundleStore } from "./bundle-store.ts";
import { parseBundleHeader } from "./bundle-header.ts";
import { parseChanges } from "./changes.ts";
import { LOG_FORMAT, parseCommitLog, type CommitLogEntry } from "./commit-log.ts";
import {
  GitError,
  gitSucceeds,
  runGit,
  runGitBytes,
  runGitRaw,
  type GitOptions,
} from "./git-command.ts";
import { WorkspaceError } from "./workspace-errors.ts";
import { CommitId, ID_PATTERN } from "../schema/identifiers.ts";
import type { Changes } from "../schema/result.ts";

/** The ref a bundle of commit X carries X under. */
export function bundleRef(commit: CommitId): string {
  return `refs/squad/bundle/${commit}`;
}

/** Locks and temp files older than this process are leftovers of a killed one. */
const PROCESS_START_MS = Date.now() - process.uptime() * 1000;

/** One instance per cache repository in a process, so its slots share one fetch mutex. */
const open = new Map<string, Promise<MissionRepo>>();

export class MissionRepo {
  readonly missionId: string;
  readonly gitDir: string;
  readonly store: BundleStore;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(gitDir: string, missionId: string, store: BundleStore) {
    this.gitDir = gitDir;
    this.missionId = missionId;
    this.store = store;
  }

  /** The mission's cache repository under `cacheRoot`, made when missing (safe after a crash). */
  static open(cacheRoot: string, missionId: string, store: BundleStore): Promise<MissionRepo> {
    if (!ID_PATTERN.test(missionId)) {
      return Promise.reject(new WorkspaceError(`invalid mission id ${JSON.stringify(missionId)}`));
    }
    const gitDir = path.join(path.resolve(cacheRoot), `${missionId}.git`);
    let repo = open.get(gitDir);
    if (!repo) {
      repo = initRepo(gitDir).then(() => new MissionRepo(gitDir, missionId, store));
      open.set(gitDir, repo);
      repo.catch(() => open.delete(gitDir));
    }
    return repo;
  }

  /** git on this repository (isolated config). */
  git(args: readonly string[], opts: Omit<GitOptions, "gitDir"> = {}): Promise<string> {
    return runGit(args, { ...opts, gitDir: this.gitDir });
  }

  /** Is `commit` (and so all its history) in this cache? */
  has(commit: CommitId): Promise<boolean> {
    return gitSucceeds(["cat-file", "-e", `${commit}^{commit}`], { gitDir: this.gitDir });
  }

  /**
   * Make `commit` present: fetch its bundle, and first its prerequisites'
   * (recursively), from the object store. Throws WorkspaceError naming the
   * mission and the commit when a bundle is missing or is not what its name says.
   */
  ensure(commit: CommitId): Promise<void> {
    CommitId.parse(commit);
    return this.#exclusive(async () => {
      // Iterative depth-first walk: a long chain of incremental bundles must not grow the stack.
      const pending: { commit: CommitId; bytes: Uint8Array | null }[] = [{ commit, bytes: null }];
      const seen = new Set<string>();
      while (pending.length > 0) {
        const top = pending[pending.length - 1]!;
        if (top.bytes === null) {
          if (await this.has(top.commit)) {
            pending.pop();
            continue;
          }
          if (seen.has(top.commit)) {
            throw this.#refused(top.commit, "its bundles' prerequisites form a cycle");
          }
          seen.add(top.commit);
          top.bytes = await this.#download(top.commit);
          const missing: CommitId[] = [];
          for (const p of parseBundleHeader(top.bytes).prerequisites) {
            if (!(await this.has(p))) missing.push(p);
          }
          if (missing.length > 0) {
            pending.push(...missing.map((c) => ({ commit: c, bytes: null })));
            continue;
          }
        }
        await this.#apply(top.commit, top.bytes);
        pending.pop();
      }
    });
  }

  /**
   * Upload the bundle of `commit` without what `since` already holds
   * (`commit ^since...`); a no-op when the store has it. Every prerequisite
   * of the bundle must have its own bundle in the store (so a fetch can
   * follow the chain): a WorkspaceError says which one is missing.
   */
  async publish(commit: CommitId, since: readonly CommitId[]): Promise<void> {
    CommitId.parse(commit);
    const ref = bundleRef(commit);
    const excluded = since.filter((s) => s !== commit).map((s) => `^${s}`);
    // Asking the store and making the bundle at once: a fresh commit is (almost) never there.
    const stored = this.store.has(this.missionId, commit);
    const made = this.setRef(ref, commit).then(() =>
      runGitBytes(["bundle", "create", "-q", "-", ref, ...excluded], { gitDir: this.gitDir }),
    );
    const [already, bytes] = await Promise.all([stored, made.catch((err: unknown) => err)]);
    if (already) return;
    if (!(bytes instanceof Uint8Array)) {
      if (bytes instanceof GitError && /empty bundle/i.test(bytes.stderr)) {
        throw new WorkspaceError(
          `mission ${this.missionId}: nothing to publish for commit ${commit}: it is already contained in ${since.join(", ")}`,
        );
      }
      throw bytes;
    }
    for (const p of parseBundleHeader(bytes).prerequisites) {
      if (!(await this.store.has(this.missionId, p))) {
        throw new WorkspaceError(
          `mission ${this.missionId}: the bundle of ${commit} needs commit ${p}, which has no bundle of its own in ${BUNDLE_BUCKET}`,
          `publish ${p} first, or pass a published commit in \`since\``,
        );
      }
    }
    await this.store.put(this.missionId, commit, bytes);
  }

  async setRef(ref: string, commit: CommitId): Promise<void> {
    await this.git(["update-ref", "--no-deref", ref, commit]);
  }

  /** The commit a ref names, or null when there is no such ref. */
  async readRef(ref: string): Promise<CommitId | null> {
    try {
      return await this.git(["rev-parse", "-q", "--verify", `${ref}^{commit}`]);
    } catch (err) {
      if (err instanceof GitError && err.exitCode === 1) return null;
      throw err;
    }
  }

  /** What `commit` changed against `base`, per file (renames detected). */
  async diffChanges(base: CommitId, commit: CommitId): Promise<Changes> {
    const common = ["diff", "-z", "-M", "--no-ext-diff", "--no-textconv", base, commit];
    const opts = { gitDir: this.gitDir };
    const [numstat, nameStatus] = await Promise.all([
      runGitRaw([...common.slice(0, 1), "--numstat", ...common.slice(1)], opts),
      runGitRaw([...common.slice(0, 1), "--name-status", ...common.slice(1)], opts),
    ]);
    return parseChanges(base, commit, numstat, nameStatus);
  }

  /** Commits in `from..to` (or all of `to`'s history when `from` is null), newest first. */
  async log(from: CommitId | null, to: CommitId): Promise<CommitLogEntry[]> {
    const range = from ? `${from}..${to}` : to;
    const out = await runGitRaw(["log", `--format=${LOG_FORMAT}`, range, "--"], {
      gitDir: this.gitDir,
    });
    return parseCommitLog(out);
  }

  /** Delete the cache repository (the mission ended); a later open() makes a new one. */
  async remove(): Promise<void> {
    open.delete(this.gitDir);
    await rm(this.gitDir, { recursive: true, force: true });
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #download(commit: CommitId): Promise<Uint8Array> {
    const bytes = await this.store.get(this.missionId, commit);
    if (bytes === null) {
      throw new WorkspaceError(
        `mission ${this.missionId}: commit ${commit} is not in this cache and the object store ` +
          `${BUNDLE_BUCKET} has no bundle ${bundleObjectName(this.missionId, commit)}`,
        "the bundle was never uploaded (its publisher died first) or the bucket's limits " +
          "(SWARM_BUNDLE_MAX_AGE_S, SWARM_BUNDLE_MAX_BYTES) removed it",
      );
    }
    let refs;
    try {
      refs = parseBundleHeader(bytes).refs;
    } catch (err) {
      throw this.#refused(commit, (err as Error).message);
    }
    const want = bundleRef(commit);
    if (refs.length !== 1 || refs[0]!.ref !== want || refs[0]!.commit !== commit) {
      const got = refs.map((r) => `${r.ref} at ${r.commit}`).join(", ") || "no refs";
      throw this.#refused(commit, `it must carry only ${want} at ${commit}, it carries ${got}`);
    }
    return bytes;
  }

  async #apply(commit: CommitId, bytes: Uint8Array): Promise<void> {
    const tmpDir = path.join(this.gitDir, "squad-tmp");
    await mkdir(tmpDir, { recursive: true });
    const file = path.join(
      tmpDir,
      `${commit}-${process.pid}-${randomBytes(4).toString("hex")}.bundle`,
    );
    await writeFile(file, bytes);
    try {
      await runGit(["bundle", "unbundle", file], { gitDir: this.gitDir });
    } catch (err) {
      throw this.#refused(commit, (err as Error).message);
    } finally {
      await rm(file, { force: true });
    }
    if (!(await this.has(commit))) throw this.#refused(commit, "it does not contain that commit");
  }

  #refused(commit: CommitId, why: string): WorkspaceError {
    return new WorkspaceError(
      `mission ${this.missionId}: refused the bundle ${bundleObjectName(this.missionId, commit)}: ${why}`,
    );
  }
}

async function initRepo(gitDir: string): Promise<void> {
  const exists = await stat(path.join(gitDir, "HEAD")).then(
    () => true,
    () => false,
  );
  if (exists) {
    await removeLeftovers(gitDir);
    return;
  }
  await mkdir(path.dirname(gitDir), { recursive: true });
  // Made beside and renamed into place: a crash mid-init leaves no half repository.
  const tmp = `${gitDir}.init-${process.pid}-${randomBytes(4).toString("hex")}`;
  await runGit(["init", "-q", "--bare", tmp], { cwd: path.dirname(gitDir) });
  try {
    await rename(tmp, gitDir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
  }
}

/** `*.lock` files and temp bundles left by a process killed mid-command (older than this one). */
async function removeLeftovers(gitDir: string): Promise<void> {
  const candidates: string[] = [];
  for (const name of [
    "HEAD.lock",
    "config.lock",
    "packed-refs.lock",
    "index.lock",
    "shallow.lock",
  ]) {
    candidates.push(path.join(gitDir, name));
  }
  for (const sub of ["refs", "squad-index", "squad-tmp"]) {
    const dir = path.join(gitDir, sub);
    const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    for (const e of entries) {
      if (sub === "squad-tmp" || e.endsWith(".lock")) candidates.push(path.join(dir, e));
    }
  }
  await Promise.all(
    candidates.map(async (file) => {
      const st = await stat(file).catch(() => null);
      if (st?.isFile() && st.mtimeMs < PROCESS_START_MS) await rm(file, { force: true });
    }),
  );
}
