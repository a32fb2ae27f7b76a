import { readFile } from "node:fs/promises";
import path from "node:path";
import { text as readAll } from "node:stream/consumers";
import { BadInputError } from "../errors.ts";
import { parseBrief, type Brief } from "../orchestrator/brief.ts";
import { resolveWorkspaceSeed } from "../orchestrator/workspace-seed.ts";
import { checkWorkspace } from "../workspace/mission-base.ts";
import { loadRoster, type Roster } from "../workers/roster.ts";

/** The file name that means "read the brief from standard input". */
export const STDIN_BRIEF = "-";

export interface BriefFile {
  /** The brief as written (what mission_submitted carries). */
  text: string;
  /** Absolute path of the file; null for a brief read from stdin. */
  sourcePath: string | null;
  brief: Brief;
  roster: Roster;
  /** The directory the brief's `workspace:` names: the mission's base is made from it. */
  seed: string | null;
}

/**
 * Reads a brief file (`-`: standard input) and checks it like the
 * orchestrator will, so a bad brief fails (exit 2) before anything is sent.
 * Its `workspace:` must lie inside the brief's directory tree or one of
 * `allowWorkspace`; for a brief from stdin, that tree is the working
 * directory's. With `checkBase`, the workspace must also be fit to become
 * the mission's base (mission-base.ts: a clean repository, not bare).
 */
export async function readBriefFile(
  file: string,
  rosterPath: string | undefined,
  /** The --allow-workspace directories: a `workspace:` outside the brief's tree must be one. */
  allowWorkspace: readonly string[] = [],
  stdin: NodeJS.ReadableStream = process.stdin,
  opts: { checkBase?: boolean } = {},
): Promise<BriefFile> {
  const fromStdin = file === STDIN_BRIEF;
  const sourcePath = fromStdin ? null : path.resolve(file);
  let text: string;
  try {
    text = fromStdin ? await readAll(stdin) : await readFile(sourcePath!, "utf8");
  } catch (err) {
    const what = fromStdin ? "the brief from stdin" : `brief ${file}`;
    throw new BadInputError(`cannot read ${what}: ${(err as Error).message}`, { cause: err });
  }
  const roster = await loadRoster(rosterPath);
  const brief = parseBrief(text, { sourcePath, knownAgents: roster.agents.map((a) => a.name) });
  const seed = await resolveWorkspaceSeed(
    brief,
    sourcePath ?? path.join(process.cwd(), "(stdin)"),
    {
      allowed: allowWorkspace,
    },
  );
  if (seed !== null && opts.checkBase) await checkWorkspace(seed);
  return { text, sourcePath, brief, roster, seed };
}
