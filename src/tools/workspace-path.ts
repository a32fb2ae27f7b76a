import path from "node:path";
import { ToolInputError } from "./tool-input-error.ts";

/**
 * The names of a path a model gave, relative to the workspace, or a
 * ToolInputError when it can not be one: absolute paths, NUL bytes and `..`
 * escapes are refused on the text alone. Symlinks are judged later, one
 * component at a time, by WorkspaceDir (workspace-dir.ts), which opens what
 * these names lead to without letting the kernel follow a link.
 *
 * `..` is kept (not folded away lexically): WorkspaceDir pops the directory
 * it came from, as the kernel would after following a link.
 *
 * The file tools are confined this way; `run_shell` is not (it runs with the
 * workspace as cwd and a clean environment; see shell.ts).
 */
export function workspacePathParts(relPath: string): string[] {
  const shown = quote(relPath);
  if (relPath.includes("\0")) throw new ToolInputError(`path ${shown} contains a NUL byte`);
  const rel = relPath.trim() === "" ? "." : relPath;
  if (path.isAbsolute(rel)) {
    throw new ToolInputError(
      `path ${shown} is absolute: use a path relative to the workspace (e.g. 'src/index.ts')`,
    );
  }
  if (!isInside("/w", path.resolve("/w", rel))) {
    throw new ToolInputError(`path ${shown} leaves the workspace`);
  }
  return rel.split("/").filter((n) => n !== "" && n !== ".");
}

/** `child` is `root` or below it (a sibling named `root-2` or `..x` is handled right). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function quote(p: string): string {
  return `'${p}'`;
}
