import { lstat, realpath } from "node:fs/promises";
import path from "node:path";
import { ToolInputError } from "./tool-input-error.ts";

export interface ResolveInWorkspaceOptions {
  /** Refuse a path that does not exist yet (reads); writes leave it false. */
  mustExist?: boolean;
}

/**
 * The absolute path of `relPath` inside the workspace `root`, or a
 * ToolInputError when it would leave it: absolute paths, `..` escapes, and
 * symlinks whose real path is outside are refused. The existing part of the
 * path is resolved with `realpath` (from the deepest existing ancestor down),
 * so a symlink made earlier by a shell command cannot smuggle a read or write
 * out. The returned path has those symlinks resolved.
 *
 * The file tools are confined this way; `run_shell` is not (it runs with the
 * workspace as cwd and a clean environment; see shell.ts).
 */
export async function resolveInWorkspace(
  root: string,
  relPath: string,
  opts: ResolveInWorkspaceOptions = {},
): Promise<string> {
  const shown = relPath;
  if (relPath.includes("\0")) throw new ToolInputError(`path ${quote(shown)} contains a NUL byte`);
  const rel = relPath.trim() === "" ? "." : relPath;
  if (path.isAbsolute(rel)) {
    throw new ToolInputError(
      `path ${quote(shown)} is absolute: use a path relative to the workspace (e.g. 'src/index.ts')`,
    );
  }
  const rootReal = await realpath(root);
  const lexical = path.resolve(rootReal, rel);
  if (!isInside(rootReal, lexical)) {
    throw new ToolInputError(`path ${quote(shown)} leaves the workspace`);
  }

  // Walk up to the deepest ancestor that exists and resolve it for real.
  const missing: string[] = [];
  let existing = lexical;
  let real: string;
  for (;;) {
    try {
      real = await realpath(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") {
        throw new ToolInputError(`path ${quote(shown)} goes through a symlink loop`);
      }
      if (code === "ENOTDIR") {
        throw new ToolInputError(
          `path ${quote(shown)} goes through a file as if it were a directory`,
        );
      }
      if (code !== "ENOENT") throw err;
      if (await exists(existing)) {
        // lstat sees it, realpath does not: a symlink to a missing target, whose
        // target we can not check; refuse rather than write through it.
        throw new ToolInputError(
          `path ${quote(shown)} is a symlink to a missing target: remove the link or use the target's path`,
        );
      }
      missing.unshift(path.basename(existing));
      existing = path.dirname(existing);
    }
  }
  if (!isInside(rootReal, real)) {
    throw new ToolInputError(`path ${quote(shown)} leaves the workspace (through a symlink)`);
  }
  if (opts.mustExist && missing.length > 0) {
    throw new ToolInputError(`path ${quote(shown)} does not exist`);
  }
  return path.join(real, ...missing);
}

/** `child` is `root` or below it (a sibling named `root-2` or `..x` is handled right). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** A path relative to the workspace for messages and listings (`.` for the root). */
export function workspaceRelative(rootReal: string, abs: string): string {
  return path.relative(rootReal, abs) || ".";
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

function quote(p: string): string {
  return `'${p}'`;
}
