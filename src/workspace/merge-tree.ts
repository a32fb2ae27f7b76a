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
