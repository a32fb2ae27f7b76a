/**
 * git run on the user's own repository, as the user would run it: their
 * configuration, ignore files and credential helpers apply (unlike
 * git-command.ts, whose git is isolated for Squad's own cache repositories).
 * Used by the submitter's side only: checking a brief's workspace before it
 * becomes a mission base, and delivering a mission's head back into it or to
 * a remote. git never prompts (a prompt would hang a command nobody watches),
 * and what it prints is cleaned of credentials before it reaches a message.
 */
import { execa } from "execa";

export class UserGitError extends Error {
  override readonly name = "UserGitError";
  /** git's exit code (null: it could not start). */
  readonly exitCode: number | null;
  /** git's standard error, credentials removed. */
  readonly stderr: string;
  constructor(message: string, exitCode: number | null, stderr: string) {
    super(message);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** `scheme://user:secret@host` → `scheme://***@host`, wherever a URL with userinfo appears. */
export function redactCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@");
}

/** Runs `git args` in `cwd` with the user's configuration; resolves with stdout. */
export async function runUserGit(
  args: readonly string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<string> {
  const r = await execa("git", args, {
    cwd: opts.cwd,
    env: {
      ...opts.env,
      // A missing credential fails instead of waiting for a terminal; no pager, no editor.
      GIT_TERMINAL_PROMPT: "0",
      GIT_ASKPASS: opts.env?.GIT_ASKPASS ?? process.env.GIT_ASKPASS ?? "",
      GIT_PAGER: "cat",
      GIT_EDITOR: "true",
      LC_ALL: "C",
    },
    reject: false,
    stripFinalNewline: false,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
  });
  if (r.exitCode === 0) return r.stdout;
  const stderr = redactCredentials(String(r.stderr ?? "").trim());
  const last = stderr.split("\n").slice(-4).join("\n");
  const shown = args.map((a) => redactCredentials(a)).join(" ");
  throw new UserGitError(
    `git ${shown} (in ${opts.cwd}) failed${r.exitCode !== undefined ? ` with exit code ${r.exitCode}` : ""}${
      last ? `: ${last}` : r.failed && !r.exitCode ? `: ${r.shortMessage}` : ""
    }`,
    r.exitCode ?? null,
    stderr,
  );
}
