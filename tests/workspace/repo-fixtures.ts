/** Commits made straight into a MissionRepo's cache (no checkout machinery), for tests. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { MissionRepo } from "../../src/workspace/mission-repo.ts";

export const AUTHOR_ENV = {
  GIT_AUTHOR_NAME: "tester",
  GIT_AUTHOR_EMAIL: "tester@squad.local",
  GIT_COMMITTER_NAME: "tester",
  GIT_COMMITTER_EMAIL: "tester@squad.local",
};

/** A commit on `parent` (or a root commit) whose tree is parent's plus `files` (null = delete). */
export async function commitFiles(
  repo: MissionRepo,
  parent: string | null,
  files: Record<string, string | null>,
  message = "test commit",
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "squad-fixture-"));
  const indexFile = path.join(dir, "index");
  const work = path.join(dir, "work");
  await mkdir(work);
  try {
    const opts = { workTree: work, indexFile };
    if (parent) await repo.git(["read-tree", parent], opts);
    for (const [name, content] of Object.entries(files)) {
      if (content === null) {
        await repo.git(["rm", "-q", "--cached", "--", name], opts);
        continue;
      }
      await mkdir(path.dirname(path.join(work, name)), { recursive: true });
      await writeFile(path.join(work, name), content);
      await repo.git(["add", "--", name], opts);
    }
    const tree = await repo.git(["write-tree"], opts);
    return await repo.git(["commit-tree", tree, ...(parent ? ["-p", parent] : [])], {
      input: message,
      env: AUTHOR_ENV,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
