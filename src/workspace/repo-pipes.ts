/**
 * The long-lived git processes of one cache repository (git-pipe.ts): what a
 * merge or a fetch asks many times per task without a spawn each. Objects
 * are read by `cat-file --batch-command` (which looks for packs again when an
 * object is not found, so it sees what a later unbundle brought), refs are
 * moved in transactions by `update-ref --stdin -z`, and commit objects are
 * written (and checked) by `hash-object -w -t commit --stdin-paths`, and
 * merges made by `merge-tree --stdin` (merge-tree.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { GitPipe, readLine } from "./git-pipe.ts";
import { mergeTreeRequest, readMergeTreeAnswer, type MergeTreeResult } from "./merge-tree.ts";

const OID = /^[0-9a-f]{40}$/;

export interface ObjectInfo {
  oid: string;
  type: string;
  size: number;
}

/** `<oid> <type> <size>` or `<name> missing` (or `ambiguous`): the object, or null. */
function parseInfo(line: string): ObjectInfo | null {
  const m = /^([0-9a-f]{40}) (\S+) (\d+)$/.exec(line);
  if (m) return { oid: m[1]!, type: m[2]!, size: Number(m[3]) };
  if (/ (missing|ambiguous)$/.test(line)) return null;
  throw new Error(`unexpected git cat-file answer: ${JSON.stringify(line.slice(0, 200))}`);
}

export class RepoPipes {
  readonly #gitDir: string;
  readonly #reader: GitPipe;
  readonly #refs: GitPipe;
  readonly #hasher: GitPipe;
  readonly #merger: GitPipe;

  constructor(gitDir: string) {
    this.#gitDir = gitDir;
    const opts = { gitDir };
    this.#reader = new GitPipe(["cat-file", "--batch-command"], opts);
    this.#refs = new GitPipe(["update-ref", "--no-deref", "--stdin", "-z"], opts);
    this.#hasher = new GitPipe(["hash-object", "-w", "-t", "commit", "--stdin-paths"], opts);
    this.#merger = new GitPipe(["merge-tree", "--stdin", "--name-only", "--messages", "-z"], opts);
  }

  /** The object `name` (an id or `<id>^{commit}`, `<id>^`...) resolves to, or null. */
  info(name: string): Promise<ObjectInfo | null> {
    checkName(name);
    return this.#reader.request(`info ${name}\n`, (buf) => {
      const line = readLine(buf);
      return line && { value: parseInfo(line.value), used: line.used };
    });
  }

  /** The object's content, or null when there is no such object. */
  contents(name: string): Promise<{ info: ObjectInfo; data: Buffer } | null> {
    checkName(name);
    return this.#reader.request(`contents ${name}\n`, (buf) => {
      const line = readLine(buf);
      if (!line) return null;
      const info = parseInfo(line.value);
      if (!info) return { value: null, used: line.used };
      const end = line.used + info.size;
      if (buf.length < end + 1) return null;
      return { value: { info, data: Buffer.from(buf.subarray(line.used, end)) }, used: end + 1 };
    });
  }

  /** Point every ref at its commit, in one transaction (all or none). */
  updateRefs(updates: ReadonlyArray<{ ref: string; commit: string }>): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    let input = "start\0";
    for (const u of updates) {
      if (!OID.test(u.commit) || /[\0\n ]/.test(u.ref)) {
        return Promise.reject(new Error(`bad ref update ${u.ref} → ${u.commit}`));
      }
      input += `update ${u.ref}\0${u.commit}\0\0`;
    }
    input += "commit\0";
    return this.#refs.request(input, (buf) => {
      // "start: ok\n" then "commit: ok\n"; a refused update ends git (its stderr says why).
      let used = 0;
      for (let i = 0; i < 2; i++) {
        const line = readLine(buf.subarray(used));
        if (!line) return null;
        if (!/^(start|commit): ok$/.test(line.value)) {
          throw new Error(`unexpected git update-ref answer: ${JSON.stringify(line.value)}`);
        }
        used += line.used;
      }
      return { value: undefined, used };
    });
  }

  /** Write a commit object (git checks its format); its id. */
  async writeCommit(text: string): Promise<string> {
    const dir = path.join(this.#gitDir, "squad-tmp");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `commit-${process.pid}-${randomBytes(6).toString("hex")}`);
    await writeFile(file, text);
    try {
      return await this.#hasher.request(`${file}\n`, (buf) => {
        const line = readLine(buf);
        if (line && !OID.test(line.value)) throw new Error(`unexpected git hash-object answer`);
        return line;
      });
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Merge `theirs` into `ours` (merge-tree.ts's mergeTrees, without a spawn). */
  mergeTrees(ours: string, theirs: string): Promise<MergeTreeResult> {
    return this.#merger.request(mergeTreeRequest(ours, theirs), readMergeTreeAnswer);
  }

  /** End the processes (before the repository is removed). */
  async close(): Promise<void> {
    const pipes = [this.#reader, this.#refs, this.#hasher, this.#merger];
    await Promise.all(pipes.map((p) => p.close()));
  }
}

function checkName(name: string): void {
  // One request per line: a name with a newline would be two.
  if (!name || /[\n\0]/.test(name)) throw new Error(`bad object name ${JSON.stringify(name)}`);
}
