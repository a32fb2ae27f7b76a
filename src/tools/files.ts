import {
  mkdir,
  opendir,
  readFile as fsReadFile,
  realpath,
  stat,
  writeFile as fsWriteFile,
} from "node:fs/promises";
import path from "node:path";
import { ToolInputError } from "./tool-input-error.ts";
import { resolveInWorkspace, workspaceRelative } from "./workspace-path.ts";

// The workspace file tools. Every path goes through resolveInWorkspace, and
// every result is bounded so one call can not flood a small model's context.

export const READ_LIMIT_BYTES = 256 * 1024;
export const WRITE_LIMIT_BYTES = 1024 * 1024;
export const LIST_LIMIT = 500;
export const SEARCH_MATCH_LIMIT = 100;
/** Files larger than this are not searched. */
const SEARCH_FILE_LIMIT_BYTES = 1024 * 1024;
/** Directory entries visited by one search. */
const SEARCH_VISIT_LIMIT = 5_000;
const SEARCH_LINE_CHARS = 200;
/** Regexes are matched against at most this much of a line (bounds backtracking). */
const SEARCH_LINE_SCAN_CHARS = 2_000;

/** Listed but not descended into: big, generated, or not the task's work. */
export const SKIPPED_DIRS = new Set([
  ".git",
  "node_modules",
  ".npm",
  ".cache",
  "__pycache__",
  ".venv",
]);

export async function readFile(root: string, relPath: string): Promise<string> {
  const abs = await resolveInWorkspace(root, relPath, { mustExist: true });
  const st = await stat(abs);
  if (st.isDirectory()) {
    throw new ToolInputError(`'${relPath}' is a directory: use list_files to see what is in it`);
  }
  if (st.size > READ_LIMIT_BYTES) {
    throw new ToolInputError(
      `'${relPath}' is ${kib(st.size)} KiB; read_file returns at most ${kib(READ_LIMIT_BYTES)} KiB: ` +
        `use run_shell with head, tail, sed -n or grep to read part of it`,
    );
  }
  const buf = await fsReadFile(abs);
  if (looksBinary(buf)) {
    throw new ToolInputError(
      `'${relPath}' is a binary file (${buf.length} bytes): use run_shell (e.g. file, xxd | head) to inspect it`,
    );
  }
  return buf.toString("utf8");
}

export interface WriteResult {
  /** Workspace-relative path written. */
  path: string;
  bytes: number;
}

/** Write (create or replace) a text file; parent directories are created. */
export async function writeFile(
  root: string,
  relPath: string,
  content: string,
): Promise<WriteResult> {
  const bytes = Buffer.byteLength(content, "utf8");
  if (bytes > WRITE_LIMIT_BYTES) {
    throw new ToolInputError(
      `content for '${relPath}' is ${kib(bytes)} KiB; write_file accepts at most ${kib(WRITE_LIMIT_BYTES)} KiB: split it into several files`,
    );
  }
  if (relPath.trim() === "" || relPath.endsWith("/")) {
    throw new ToolInputError(`write_file needs a file path, got '${relPath}'`);
  }
  const abs = await resolveInWorkspace(root, relPath);
  const existing = await stat(abs).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new ToolInputError(`'${relPath}' is a directory: give a file path inside it`);
  }
  await mkdir(path.dirname(abs), { recursive: true });
  await fsWriteFile(abs, content, "utf8");
  return { path: workspaceRelative(await realpath(root), abs), bytes };
}

export interface ListResult {
  /** Workspace-relative paths, directories with a trailing `/`, sorted depth-first. */
  entries: string[];
  truncated: boolean;
}

/** Every file and directory under `relPath` (default: the workspace), recursively. */
export async function listFiles(
  root: string,
  relPath = ".",
  limit = LIST_LIMIT,
): Promise<ListResult> {
  const rootReal = await realpath(root);
  const abs = await resolveInWorkspace(root, relPath, { mustExist: true });
  const st = await stat(abs);
  if (!st.isDirectory()) return { entries: [workspaceRelative(rootReal, abs)], truncated: false };
  const entries: string[] = [];
  const truncated = !(await walk(abs, limit, (entry) => {
    entries.push(workspaceRelative(rootReal, entry.path) + (entry.dir ? "/" : ""));
    return entries.length < limit;
  }));
  return { entries, truncated };
}

export interface SearchResult {
  /** `file:line: text` */
  matches: string[];
  truncated: boolean;
  /** How the pattern was used. */
  mode: "regex" | "text";
}

/**
 * Lines matching `pattern` under `relPath`: a JavaScript regex when it
 * compiles, plain text otherwise. Binary and very large files are skipped.
 */
export async function searchFiles(
  root: string,
  pattern: string,
  relPath = ".",
  limit = SEARCH_MATCH_LIMIT,
): Promise<SearchResult> {
  if (pattern === "") throw new ToolInputError("search_files needs a non-empty pattern");
  const { test, mode } = compilePattern(pattern);
  const rootReal = await realpath(root);
  const abs = await resolveInWorkspace(root, relPath, { mustExist: true });
  const matches: string[] = [];
  const searchOne = async (file: string): Promise<boolean> => {
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.size > SEARCH_FILE_LIMIT_BYTES) return true;
    const buf = await fsReadFile(file).catch(() => undefined);
    if (!buf || looksBinary(buf)) return true;
    const rel = workspaceRelative(rootReal, file);
    const lines = buf.toString("utf8").split("\n");
    for (const [i, line] of lines.entries()) {
      if (!test(line.slice(0, SEARCH_LINE_SCAN_CHARS))) continue;
      matches.push(`${rel}:${i + 1}: ${line.trim().slice(0, SEARCH_LINE_CHARS)}`);
      if (matches.length >= limit) return false;
    }
    return true;
  };
  const st = await stat(abs);
  let complete: boolean;
  if (st.isDirectory()) {
    let visited = 0;
    const files: string[] = [];
    complete = await walk(abs, SEARCH_VISIT_LIMIT, (entry) => {
      if (!entry.dir) files.push(entry.path);
      return ++visited < SEARCH_VISIT_LIMIT;
    });
    for (const f of files) {
      if (!(await searchOne(f))) {
        complete = false;
        break;
      }
    }
  } else {
    complete = await searchOne(abs);
  }
  return { matches, truncated: !complete, mode };
}

/**
 * A regex if it compiles, else the literal text. Nested quantifiers such as
 * `(a+)+` can take exponential time on one line and would block the worker's
 * event loop, so such patterns are refused.
 */
function compilePattern(pattern: string): {
  test: (line: string) => boolean;
  mode: "regex" | "text";
} {
  let re: RegExp | undefined;
  try {
    re = new RegExp(pattern);
  } catch {
    re = undefined;
  }
  if (!re) return { test: (line) => line.includes(pattern), mode: "text" };
  if (/\([^)]*[+*][^)]*\)\s*[+*{]/.test(pattern)) {
    throw new ToolInputError(
      `pattern /${pattern}/ nests repetitions (like (a+)+), which can take forever: simplify it`,
    );
  }
  const compiled = re;
  return { test: (line) => compiled.test(line), mode: "regex" };
}

interface WalkEntry {
  path: string;
  dir: boolean;
}

/**
 * Depth-first, sorted, not following symlinks (a link is listed, never
 * entered, so a walk can not leave the workspace). `visit` returns false to
 * stop; walk returns false when stopped early. `budget` bounds directories
 * opened as well, so a huge tree costs bounded time.
 */
async function walk(
  dir: string,
  budget: number,
  visit: (e: WalkEntry) => boolean,
): Promise<boolean> {
  let opened = 0;
  const recurse = async (d: string): Promise<boolean> => {
    if (++opened > budget) return false;
    const names: Array<{ name: string; dir: boolean }> = [];
    for await (const ent of await opendir(d)) {
      names.push({ name: ent.name, dir: ent.isDirectory() });
    }
    names.sort((a, b) => a.name.localeCompare(b.name));
    for (const { name, dir: isDir } of names) {
      const p = path.join(d, name);
      if (!visit({ path: p, dir: isDir })) return false;
      if (isDir && !SKIPPED_DIRS.has(name) && !(await recurse(p))) return false;
    }
    return true;
  };
  return recurse(dir);
}

/** A NUL byte in the first 8 KiB: what git and grep call binary. */
function looksBinary(buf: Buffer): boolean {
  return buf.subarray(0, 8192).includes(0);
}

function kib(bytes: number): number {
  return Math.ceil(bytes / 1024);
}
