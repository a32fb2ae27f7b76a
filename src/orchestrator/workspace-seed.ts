import { cp, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { missionWorkspace } from "../config.ts";
import { BadInputError } from "../errors.ts";
import type { Brief } from "./brief.ts";

/**
 * A brief's `workspace:` names a directory (relative to the brief) whose
 * contents seed the mission workspace, so a mission can work on existing
 * files. The submitter copies it (it has the brief's file system; the
 * workspace root is shared with the workers), before the mission is
 * submitted. Resolves and checks it; throws BadInputError (exit 2) if absent.
 */
export async function resolveWorkspaceSeed(
  brief: Brief,
  sourcePath: string,
): Promise<string | null> {
  if (!brief.workspace) return null;
  const from = path.resolve(path.dirname(sourcePath), brief.workspace);
  const info = await stat(from).catch(() => null);
  if (!info?.isDirectory()) {
    throw new BadInputError(
      `brief front matter workspace: ${JSON.stringify(brief.workspace)} is not a directory (looked for ${from})`,
    );
  }
  return from;
}

/** Copies the seed into `<workspaceRoot>/<missionId>/` (node_modules and .git left out). */
export async function seedMissionWorkspace(
  seed: string,
  workspaceRoot: string,
  missionId: string,
): Promise<string> {
  const dest = missionWorkspace(workspaceRoot, missionId);
  await mkdir(dest, { recursive: true });
  await cp(seed, dest, {
    recursive: true,
    filter: (src) => !/(^|\/)(node_modules|\.git)(\/|$)/.test(path.relative(seed, src)),
  });
  return dest;
}
