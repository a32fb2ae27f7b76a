/**
 * Internal git, isolated from the host's configuration: no system or global
 * config, no hooks, no credential helpers, no automatic gc, no prompts. Every
 * workspace module runs git through here (never a shell), so a repository a
 * user or a task made cannot configure what Squad's own git does.
 */

export interface GitOptions {
  /** `--git-dir`: the mission's bare cache repository. */
  gitDir?: string;
  /** `--work-tree`: a task's plain checkout directory (no `.git` inside). */
  workTree?: string;
  /** `GIT_INDEX_FILE`: the checkout's own index inside the cache repository. */
  indexFile?: string;
  cwd?: string;
  /** Extra environment (author and committer of a commit, say). */
  env?: Record<string, string>;
  /** Written to git's stdin. */
  input?: string | Uint8Array;
  signal?: AbortSignal;
}

/** A git command that failed: the command and the last lines of what git said. */
export class GitError extends Error {
  override readonly name: string = "GitError";
  readonly args: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(args: readonly string[], exitCode: number | undefined, stderr: string) {
    // git's own verdict ("fatal: ...", "error: ...") when it gave one, else its last lines.
    const lines = stderr.trim().split("\n");
    const verdict = lines.filter((l) => /^(fatal|error):/.test(l));
    const tail = (verdict.length > 0 ? verdict : lines).slice(-4).join("\n");
    super(
      `git ${args.join(" ")} failed (${exitCode === undefined ? "no exit code" : `exit ${exitCode}`})` +
        (tail ? `: ${tail}` : ""),
    );
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Settings forced on every internal git call (command line wins over any repository config). */
const ISOLATION = [
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "credential.helper=",
  "-c",
  "gc.auto=0",
  "-c",
  "maintenance.auto=false",
  "-c",
  "core.fsmonitor=false",
  // Not ~/.config/git/ignore: only the checkout's own .gitignore files decide what is left out.
  "-c",
  "core.excludesFile=/dev/null",
  "-c",
  "safe.directory=*",
  "-c",
  "core.quotePath=false",
  "-c",
  "init.defaultBranch=main",
  "-c",
  "advice.detachedHead=false",
];

/** The process environment without any GIT_* variable (GIT_DIR in the host's env must not leak in). */
function isolatedEnv(extra: Record<string, string> | undefined, indexFile?: string) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("GIT_")) env[k] = v;
  }
  Object.assign(env, {
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    GIT_OPTIONAL_LOCKS: "0",
    LC_ALL: "C",
  });
  if (indexFile) env.GIT_INDEX_FILE = indexFile;
  return { ...env, ...extra };
}

/** The argv, environment and directory of an internal git command (also for long-lived ones: git-pipe.ts). */
export function gitInvocation(args: readonly string[], opts: GitOptions) {
  return {
    args: fullArgs(args, opts),
    env: isolatedEnv(opts.env, opts.indexFile),
    cwd: opts.cwd ?? opts.workTree ?? opts.gitDir ?? process.cwd(),
  };
}

function fullArgs(args: readonly string[], opts: GitOptions): string[] {
  const pre: string[] = [...ISOLATION];
  if (opts.gitDir) pre.push(`--git-dir=${opts.gitDir}`);
  if (opts.workTree) pre.push(`--work-tree=${opts.workTree}`);
  return [...pre, ...args];
}

async function run(args: readonly string[], opts: GitOptions, buffer: boolean) {
  // Loaded on the first git command, not with this module: an idle replica never holds execa.
  const { execa } = await import("execa");
  const how = gitInvocation(args, opts);
  const r = await execa("git", how.args, {
    cwd: how.cwd,
    env: how.env,
    extendEnv: false,
    input: opts.input,
    cancelSignal: opts.signal,
    reject: false,
    stripFinalNewline: false,
    encoding: buffer ? "buffer" : "utf8",
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (r.failed || r.exitCode !== 0) {
    const stderr = typeof r.stderr === "string" ? r.stderr : Buffer.from(r.stderr).toString();
    throw new GitError(args, r.exitCode, stderr || (r.shortMessage ?? ""));
  }
  return r.stdout;
}

/** Run git; its stdout, with one trailing newline removed. Throws GitError. */
export async function runGit(args: readonly string[], opts: GitOptions = {}): Promise<string> {
  const out = (await run(args, opts, false)) as string;
  return out.endsWith("\n") ? out.slice(0, -1) : out;
}

/** Run git; its stdout exactly as bytes (for `-z` output or binary data). */
export async function runGitBytes(
  args: readonly string[],
  opts: GitOptions = {},
): Promise<Uint8Array> {
  return (await run(args, opts, true)) as Uint8Array;
}

/** Run git; its stdout exactly as text (for `-z` output). */
export async function runGitRaw(args: readonly string[], opts: GitOptions = {}): Promise<string> {
  return (await run(args, opts, false)) as string;
}

/** Whether git exits 0 (e.g. `cat-file -e`); other failures than exit 1/128 still throw. */
export async function gitSucceeds(
  args: readonly string[],
  opts: GitOptions = {},
): Promise<boolean> {
  try {
    await run(args, opts, false);
    return true;
  } catch (err) {
    if (err instanceof GitError && (err.exitCode === 1 || err.exitCode === 128)) return false;
    throw err;
  }
}
