/**
 * A process's local cache of one mission's git repository: a bare
 * repository at `<cacheRoot>/<mission>.git` that holds the commits this
 * process has fetched (bundles from the object store) or made. Commits
 * travel only as bundles named for the commit they carry; integrity is
 * git's own (the bundle of X must carry `refs/squad/bundle/X` at X, and only
 * such refs: one bundle may be stored under the names of several commits it
 * carries, see publishAll; index-pack hashes every object).
 *
 * Presence checks, object reads and ref updates go to long-lived git
 * processes (repo-pipes.ts), not a spawn each; remove() ends them first.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { BUNDLE_BUCKET, bundleObjectName, type BundleStore } from "./bundle-store.ts";
import { formatBundleHeader, parseBundleHeader, type BundleHeader } from "./bundle-header.ts";
import { parseDiffChanges } from "./changes.ts";
import { LOG_FORMAT, parseCommitLog, type CommitLogEntry } from "./commit-log.ts";
import {
  GitError,
  gitSucceeds,
  runGit,
  runGitBytes,
  runGitRaw,
  type GitOptions,
} from "./git-command.ts";
import type { MergeTreeResult } from "./merge-tree.ts";
import { RepoPipes, type ObjectInfo } from "./repo-pipes.ts";
import { WorkspaceError } from "./workspace-errors.ts";
import { CommitId, ID_PATTERN } from "../schema/identifiers.ts";
import type { Changes } from "../schema/result.ts";

/** The ref a bundle of commit X carries X under. */
export function bundleRef(commit: CommitId): string {
  return `refs/squad/bundle/${commit}`;
}

/** Locks and temp files older than this process are leftovers of a killed one. */
const PROCESS_START_MS = Date.now() - process.uptime() * 1000;

/**
 * Over this many bytes in all, a bundle of several commits is not stored
 * once per commit (publishAll): each gets its own incremental bundle.
 */
const SHARED_BUNDLE_MAX_BYTES = 4 * 1024 * 1024;

/** One instance per cache repository in a process, so its slots share one fetch mutex. */
const open = new Map<string, Promise<MissionRepo>>();

export class MissionRepo {
  readonly missionId: string;
  readonly gitDir: string;
  readonly store: BundleStore;
  readonly #pipes: RepoPipes;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(gitDir: string, missionId: string, store: BundleStore) {
    this.gitDir = gitDir;
    this.missionId = missionId;
    this.store = store;
    this.#pipes = new RepoPipes(gitDir);
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
  async has(commit: CommitId): Promise<boolean> {
    return (await this.#pipes.info(`${commit}^{commit}`)) !== null;
  }

  /** The object a name resolves to (`<id>^`, `<id>^{tree}`...), or null. */
  objectInfo(name: string): Promise<ObjectInfo | null> {
    return this.#pipes.info(name);
  }

  /** A commit's raw object text; throws when the cache does not have it. */
  async readCommit(commit: CommitId): Promise<string> {
    const o = await this.#pipes.contents(`${CommitId.parse(commit)}^{commit}`);
    if (!o) throw new WorkspaceError(`mission ${this.missionId}: no commit ${commit} in the cache`);
    return o.data.toString();
  }

  /** Merge `theirs` into `ours` without a working tree (merge-tree.ts), in a long-lived git. */
  mergeTrees(ours: CommitId, theirs: CommitId): Promise<MergeTreeResult> {
    return this.#pipes.mergeTrees(ours, theirs);
  }

  /** Write a commit object from its text (checked by git); its id. */
  writeCommit(text: string): Promise<CommitId> {
    return this.#pipes.writeCommit(text);
  }

  /**
   * Is `ancestor` on the first-parent line of `commit` (a mission branch is
   * linear)? Walked in the cache's object reader; a long history falls back to
   * `git merge-base --is-ancestor`.
   */
  async isAncestor(ancestor: CommitId, commit: CommitId): Promise<boolean> {
    let at: string | undefined = commit;
    for (let steps = 0; at && steps < 256; steps++) {
      if (at === ancestor) return true;
      at = /^parent ([0-9a-f]{40})$/m.exec(await this.readCommit(at))?.[1];
    }
    if (!at) return false;
    return gitSucceeds(["merge-base", "--is-ancestor", ancestor, commit], { gitDir: this.gitDir });
  }

  /**
   * Make `commit` present: fetch its bundle, and first its prerequisites'
   * (recursively), from the object store. Throws WorkspaceError naming the
   * mission and the commit when a bundle is missing or is not what its name says.
   */
  ensure(commit: CommitId): Promise<void> {
    CommitId.parse(commit);
    return this.#exclusive(() => this.#ensureOne(commit));
  }

  /**
   * ensure() for several commits at once: the bundles of those missing are
   * downloaded and unbundled in parallel when their prerequisites are here
   * (a merge queue's waiting attempts, all on heads this cache has).
   */
  ensureAll(commits: readonly CommitId[]): Promise<void> {
    const wanted = [...new Set(commits.map((c) => CommitId.parse(c)))];
    return this.#exclusive(async () => {
      const present = await Promise.all(wanted.map((c) => this.has(c)));
      const missing = wanted.filter((_, i) => !present[i]);
      if (missing.length > 1) {
        const bundles = await Promise.all(missing.map((c) => this.#download(c)));
        const ready = await Promise.all(
          bundles.map(async (b) => {
            const prerequisites = parseBundleHeader(b).prerequisites;
            const here = await Promise.all(prerequisites.map((p) => this.has(p)));
            return here.every(Boolean);
          }),
        );
        await Promise.all(missing.map((c, i) => (ready[i] ? this.#apply(c, bundles[i]!) : null)));
      }
      for (const c of missing) await this.#ensureOne(c);
    });
  }

  async #ensureOne(commit: CommitId): Promise<void> {
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
  }

  /**
   * Upload the bundle of `commit` without what `since` already holds
   * (`commit ^since...`); a no-op when the store has it. Every prerequisite
   * of the bundle must have its own bundle in the store (so a fetch can
   * follow the chain): a WorkspaceError says which one is missing.
   */
  publish(commit: CommitId, since: readonly CommitId[]): Promise<void> {
    return this.publishAll([commit], since);
  }

  /**
   * publish() for a line of commits (each a descendant of the one before: a
   * merge queue's pass): ONE bundle of them all without `since`, stored under
   * each commit's name, so a replica fetching any of them (a dispatch on an
   * intermediate head) or the last (usually) downloads and unbundles once.
   * When that bundle is large, each commit gets its own incremental bundle.
   *
   * `through`: commits already published, between `since` and the first of
   * `commits`, carried too (not named): a replica still at `since` then
   * downloads one bundle instead of a chain. Left out when that makes the
   * bundle large.
   */
  async publishAll(
    commits: readonly CommitId[],
    since: readonly CommitId[],
    through: readonly CommitId[] = [],
  ): Promise<void> {
    for (const c of commits) CommitId.parse(c);
    if (commits.length === 0) return;
    // Asking the store and making the bundle at once: a fresh commit is (almost) never there.
    const stored = Promise.all(commits.map((c) => this.store.has(this.missionId, c)));
    const made = this.#bundle(commits, since, through);
    const [already, made1] = await Promise.all([stored, made.catch((err: unknown) => err)]);
    let bytes = made1;
    let from = since;
    if (
      bytes instanceof Uint8Array &&
      through.length > 0 &&
      bytes.byteLength > SHARED_BUNDLE_MAX_BYTES / 4
    ) {
      // Too much to carry again: only what is new, from the last commit `through`.
      from = [through.at(-1)!];
      bytes = await this.#bundle(commits, from).catch((err: unknown) => err);
    }
    const todo = commits.filter((_, i) => !already[i]);
    if (todo.length === 0) return;
    if (!(bytes instanceof Uint8Array)) {
      if (bytes instanceof GitError && /empty bundle/i.test(bytes.stderr)) {
        throw new WorkspaceError(
          `mission ${this.missionId}: nothing to publish for commit ${commits.join(", ")}: it is already contained in ${since.join(", ")}`,
        );
      }
      throw bytes;
    }
    await this.#checkPrerequisites(commits.at(-1)!, bytes);
    if (commits.length === 1 || bytes.byteLength * todo.length <= SHARED_BUNDLE_MAX_BYTES) {
      await Promise.all(todo.map((c) => this.store.put(this.missionId, c, bytes)));
      return;
    }
    for (const [i, c] of commits.entries()) {
      if (already[i]) continue;
      const own = await this.#bundle([c], i > 0 ? [commits[i - 1]!] : from);
      await this.store.put(this.missionId, c, own);
    }
  }

  async #checkPrerequisites(commit: CommitId, bytes: Uint8Array): Promise<void> {
    const prerequisites = parseBundleHeader(bytes).prerequisites;
    const stored = await Promise.all(prerequisites.map((p) => this.store.has(this.missionId, p)));
    for (const [i, p] of prerequisites.entries()) {
      if (!stored[i]) {
        throw new WorkspaceError(
          `mission ${this.missionId}: the bundle of ${commit} needs commit ${p}, which has no bundle of its own in ${BUNDLE_BUCKET}`,
          `publish ${p} first, or pass a published commit in \`since\``,
        );
      }
    }
  }

  setRef(ref: string, commit: CommitId): Promise<void> {
    return this.#pipes.updateRefs([{ ref, commit }]);
  }

  /** Several refs moved in one transaction (all or none). */
  setRefs(updates: ReadonlyArray<{ ref: string; commit: CommitId }>): Promise<void> {
    return this.#pipes.updateRefs(updates);
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

  /** What `commit` changed against `base`, per file (renames detected), from one git process. */
  async diffChanges(base: CommitId, commit: CommitId): Promise<Changes> {
    const out = await runGitRaw(
      ["diff", "-z", "-M", "--no-ext-diff", "--no-textconv", "--raw", "--numstat", base, commit],
      { gitDir: this.gitDir },
    );
    return parseDiffChanges(base, commit, out);
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
    await this.#pipes.close();
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
    const own = (r: { ref: string; commit: string }) => r.ref === bundleRef(r.commit);
    if (!refs.some((r) => r.ref === want && r.commit === commit) || !refs.every(own)) {
      const got = refs.map((r) => `${r.ref} at ${r.commit}`).join(", ") || "no refs";
      throw this.#refused(
        commit,
        `it must carry only refs/squad/bundle/<c> at c, among them ${want} at ${commit}; it carries ${got}`,
      );
    }
    return bytes;
  }

  /**
   * Index the bundle's pack straight from memory (`index-pack --stdin
   * --fix-thin`, what `git bundle unbundle` runs after writing it to a file:
   * one process instead of two). Its prerequisites must be here (checked
   * first, as unbundle does); the commit it is named for must be in it.
   */
  async #apply(commit: CommitId, bytes: Uint8Array): Promise<void> {
    let prerequisites: string[];
    try {
      prerequisites = parseBundleHeader(bytes).prerequisites;
    } catch (err) {
      throw this.#refused(commit, (err as Error).message);
    }
    const here = await Promise.all(prerequisites.map((p) => this.has(p)));
    const lacking = prerequisites.filter((_, i) => !here[i]);
    if (lacking.length > 0) {
      throw this.#refused(commit, `it needs commits this cache lacks: ${lacking.join(", ")}`);
    }
    const header = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf("\n\n");
    try {
      await runGit(["index-pack", "--stdin", "--fix-thin"], {
        gitDir: this.gitDir,
        input: bytes.subarray(header + 2),
      });
    } catch (err) {
      throw this.#refused(commit, (err as Error).message);
    }
    if (!(await this.has(commit))) throw this.#refused(commit, "it does not contain that commit");
  }

  /**
   * The bundle of `commits` without `since`. When every commit's parents are
   * among them or in `since` (an attempt on its base, a merge queue's pass),
   * its prerequisites are exactly those parents and the bundle is written
   * here around one `git pack-objects` (what `git bundle create` runs, with
   * a rev-list of its own before: one process instead of two or three).
   * Anything else (a base with history) is `git bundle create`'s.
   */
  async #bundle(
    commits: readonly CommitId[],
    since: readonly CommitId[],
    through: readonly CommitId[] = [],
  ): Promise<Uint8Array> {
    const mine = new Set([...through, ...commits]);
    const before = new Set(since);
    const prerequisites = new Set<string>();
    let line = since.length > 0;
    for (const c of line ? mine : []) {
      const text = await this.readCommit(c);
      const head = text.slice(0, Math.max(0, text.indexOf("\n\n")));
      const parents = [...head.matchAll(/^parent ([0-9a-f]{40})$/gm)].map((m) => m[1]!);
      if (parents.length === 0 || parents.some((p) => !mine.has(p) && !before.has(p))) {
        line = false;
        break;
      }
      for (const p of parents) if (!mine.has(p)) prerequisites.add(p);
    }
    const excluded = since.filter((s) => !mine.has(s)).map((s) => `^${s}`);
    if (!line) {
      const refs = commits.map((c) => bundleRef(c));
      await this.setRefs(commits.map((c) => ({ ref: bundleRef(c), commit: c })));
      return runGitBytes(["bundle", "create", "-q", "-", ...refs, ...excluded], {
        gitDir: this.gitDir,
      });
    }
    return packedBundle(
      this.gitDir,
      {
        prerequisites: [...prerequisites],
        refs: commits.map((c) => ({ commit: c, ref: bundleRef(c) })),
      },
      [...mine, ...excluded],
    );
  }

  #refused(commit: CommitId, why: string): WorkspaceError {
    return new WorkspaceError(
      `mission ${this.missionId}: refused the bundle ${bundleObjectName(this.missionId, commit)}: ${why}`,
    );
  }
}

/**
 * A bundle written around one `git pack-objects --revs --thin` of `revs`
 * (tips and `^excluded`), with `header`'s prerequisites and refs: what `git
 * bundle create` writes, without its ref updates and rev-list. The caller
 * vouches that the prerequisites are exactly what the pack leaves out.
 */
export async function packedBundle(
  gitDir: string,
  header: BundleHeader,
  revs: readonly string[],
): Promise<Buffer> {
  const pack = await runGitBytes(
    ["pack-objects", "--stdout", "--thin", "--delta-base-offset", "--revs", "-q"],
    { gitDir, input: [...revs, ""].join("\n") },
  );
  return Buffer.concat([Buffer.from(formatBundleHeader(header), "latin1"), pack]);
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
