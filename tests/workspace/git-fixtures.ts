/** A user's repositories for the submitter-side tests: real git, the user's side (not isolated). */
import { execa } from "execa";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

/** The user's environment for git in tests: an identity, no global or system config of the host. */
export const USER_GIT_ENV = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Ada User",
  GIT_AUTHOR_EMAIL: "ada@example.com",
  GIT_COMMITTER_NAME: "Ada User",
  GIT_COMMITTER_EMAIL: "ada@example.com",
};

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await execa("git", args, { cwd, env: USER_GIT_ENV });
  return r.stdout;
}

/** A repository at `dir` with `commits` commits (files a.txt, b.txt ...), on branch main. */
export async function makeUserRepo(
  dir: string,
  files: Record<string, string>[] = [{ "README.md": "# app\n" }],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  await git(dir, "init", "-q", "-b", "main");
  const shas: string[] = [];
  for (const [i, set] of files.entries()) {
    for (const [name, content] of Object.entries(set)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    await git(dir, "add", "-A");
    await git(dir, "commit", "-q", "-m", `commit ${i + 1}`);
    shas.push(await git(dir, "rev-parse", "HEAD"));
  }
  return shas;
}

/** What a person would compare before and after: HEAD, the current branch, status, the index. */
export async function repoState(dir: string) {
  return {
    head: await git(dir, "rev-parse", "HEAD"),
    branch: await git(dir, "symbolic-ref", "-q", "HEAD"),
    status: await git(dir, "status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
    index: await git(dir, "ls-files", "-s"),
  };
}
