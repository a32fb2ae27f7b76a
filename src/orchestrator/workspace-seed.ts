import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import { BadInputError } from "../errors.ts";
import { isInside } from "../tools/workspace-path.ts";
import type { Brief } from "./brief.ts";

/** The flag that lets a brief's `workspace:` name a directory outside the brief's tree. */
export const ALLOW_WORKSPACE_FLAG = "--allow-workspace";

/**
 * Where a seed may come from, on real paths (symlinks resolved): inside a
 * directory the submitter named on the command line, else inside the
 * brief's own directory tree. Null: neither. A brief is text anyone may
 * hand over, so it alone can not make the submitter upload `/etc/ssl` or
 * `~/.ssh` into a mission that tasks then print. A brief directly in `/`
 * has no tree to speak of: its workspace must be named on the command line.
 */
export function workspaceSeedPlace(
  seedReal: string,
  briefDirReal: string,
  allowedReal: readonly string[],
): "allowed" | "brief" | null {
  if (allowedReal.some((dir) => isInside(dir, seedReal))) return "allowed";
  if (briefDirReal !== path.parse(briefDirReal).root && isInside(briefDirReal, seedReal)) {
    return "brief";
  }
  return null;
}

export interface ResolveSeedOptions {
  /** Directories the submitter named with --allow-workspace (relative to the cwd). */
  allowed?: readonly string[];
}

/**
 * A brief's `workspace:` names a directory (relative to the brief) that the
 * mission starts from, so a mission can work on existing files: the
 * submitter (it has the brief's file system) makes the mission's base
 * commit from it (src/workspace/mission-base.ts) and delivers the result
 * back into it. Resolves and checks it (a directory, and a place
 * workspaceSeedPlace accepts); throws BadInputError (exit 2) otherwise.
 */
export async function resolveWorkspaceSeed(
  brief: Brief,
  sourcePath: string,
  opts: ResolveSeedOptions = {},
): Promise<string | null> {
  if (!brief.workspace) return null;
  const named = JSON.stringify(brief.workspace);
  const from = path.resolve(path.dirname(sourcePath), brief.workspace);
  const real = await realpath(from).catch(() => null);
  const info = real ? await stat(real).catch(() => null) : null;
  if (!real || !info?.isDirectory()) {
    throw new BadInputError(
      `brief front matter workspace: ${named} is not a directory (looked for ${from})`,
    );
  }
  const allowed: string[] = [];
  for (const dir of opts.allowed ?? []) {
    const r = await realpath(path.resolve(dir)).catch(() => null);
    if (!r || !(await stat(r).catch(() => null))?.isDirectory()) {
      throw new BadInputError(`${ALLOW_WORKSPACE_FLAG} ${dir}: not a directory`);
    }
    allowed.push(r);
  }
  const briefDir = await realpath(path.dirname(sourcePath));
  if (workspaceSeedPlace(real, briefDir, allowed) === null) {
    const shown = real === from ? real : `${from} (really ${real})`;
    throw new BadInputError(
      `brief front matter workspace: ${named} is ${shown}, outside the brief's directory ${briefDir}: ` +
        "a brief may only seed its mission from its own directory tree. If you mean to copy that " +
        `directory into the mission (its tasks can read and print it), say so: ${ALLOW_WORKSPACE_FLAG} ${real}`,
    );
  }
  return real;
}
