/**
 * A three-way merge without a working tree: `git merge-tree --write-tree
 * --stdin -z`, which (unlike a plain `--write-tree`) exits 0 on a conflict
 * too and says so in its output, so the conflicting paths can be read.
 * Onto a linear mission branch, merging an attempt's commit C (parent P, an
 * ancestor of the head H) is a cherry-pick of C onto H: the merge base of H
 * and C is P.
 */
import { runGitRaw } from "./git-command.ts";

export interface MergeTreeResult {
  clean: boolean;
  /** The merged tree (with conflict markers in conflicting files when not clean). */
  tree: string;
  /** Paths with a conflict. */
  files: string[];
  /** git's CONFLICT messages, for a person. */
  conflicts: string[];
}

/**
 * Parse one merge's `--stdin -z --name-only` output: `<1|0>\0<tree>\0`,
 * the conflicted paths each followed by \0, an empty field, then messages
 * (`<n>\0<n paths>\0<type>\0<text>\0`).
 */
export function parseMergeTree(out: string): MergeTreeResult {
  const fields = out.split("\0");
  const [status, tree] = fields;
  if ((status !== "0" && status !== "1") || !tree || !/^[0-9a-f]{40}$/.test(tree)) {
    throw new Error(`unexpected git merge-tree output: ${JSON.stringify(out.slice(0, 200))}`);
  }
  let i = 2;
  const files: string[] = [];
  for (; i < fields.length && fields[i] !== ""; i++) files.push(fields[i]!);
  i++;
  const conflicts: string[] = [];
  while (i < fields.length) {
    const n = Number(fields[i]);
    if (!Number.isInteger(n) || n < 0 || fields[i] === "") break;
    const type = fields[i + n + 1] ?? "";
    const text = (fields[i + n + 2] ?? "").trim();
    if (type.startsWith("CONFLICT")) conflicts.push(text);
    i += n + 3;
  }
  return { clean: status === "1", tree, files: [...new Set(files)], conflicts };
}

/** Merge `theirs` into `ours` in the bare repository `gitDir` (no working tree, no refs touched). */
export async function mergeTrees(
  gitDir: string,
  ours: string,
  theirs: string,
): Promise<MergeTreeResult> {
  const out = await runGitRaw(["merge-tree", "--stdin", "--name-only", "--messages", "-z"], {
    gitDir,
    input: `${ours} ${theirs}\n`,
  });
  return parseMergeTree(out);
}

/**
 * The line a long-lived `git merge-tree --stdin --name-only --messages -z`
 * is given for one merge of `theirs` into `ours`: the merge, then the merge
 * of `ours` with itself as a marker. git ends each merge's answer with a NUL
 * only when it starts the next one (or exits), so without the marker the
 * end of an answer (its last conflicted path or message) could not be told.
 */
export function mergeTreeRequest(ours: string, theirs: string): string {
  if (!/^[0-9a-f]{40}$/.test(ours) || !/^[0-9a-f]{40}$/.test(theirs)) {
    throw new Error(`merge-tree wants two commit ids, got ${ours} and ${theirs}`);
  }
  return `${ours} ${theirs}\n${ours} ${ours}\n`;
}

/**
 * Read one answer to mergeTreeRequest from the start of `buf`, or null: more
 * is needed. It is `[NUL ending the previous marker]`, the merge (as in
 * parseMergeTree), its ending NUL, then the marker's `1 NUL <tree> NUL NUL`.
 */
export function readMergeTreeAnswer(buf: Buffer): { value: MergeTreeResult; used: number } | null {
  let pos = 0;
  const field = (): string | null => {
    const z = buf.indexOf(0, pos);
    if (z < 0) return null;
    const f = buf.subarray(pos, z).toString();
    pos = z + 1;
    return f;
  };
  let status = field();
  // A status is never empty: an empty field first is the previous answer's end.
  if (status === "") status = field();
  const tree = status === null ? null : field();
  if (status === null || tree === null) return null;
  const files: string[] = [];
  for (;;) {
    const f = field();
    if (f === null) return null;
    if (f === "") break;
    files.push(f);
  }
  const conflicts: string[] = [];
  for (;;) {
    const n = field();
    if (n === null) return null;
    if (n === "") break;
    const count = Number(n);
    if (!Number.isInteger(count) || count < 0) throw unexpected(buf);
    for (let i = 0; i < count; i++) if (field() === null) return null;
    const type = field();
    const text = type === null ? null : field();
    if (type === null || text === null) return null;
    if (type.startsWith("CONFLICT")) conflicts.push(text.trim());
  }
  const marker = [field(), field(), field()];
  if (marker.some((f) => f === null)) return null;
  if (marker[0] !== "1" || marker[2] !== "") throw unexpected(buf);
  if ((status !== "0" && status !== "1") || !/^[0-9a-f]{40}$/.test(tree)) throw unexpected(buf);
  return {
    value: { clean: status === "1", tree, files: [...new Set(files)], conflicts },
    used: pos,
  };
}

function unexpected(buf: Buffer): Error {
  return new Error(
    `unexpected git merge-tree output: ${JSON.stringify(buf.subarray(0, 200).toString())}`,
  );
}
