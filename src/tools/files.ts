import type { FileHandle } from "node:fs/promises";
import { RE2JS } from "re2js";
import { sandboxUser, type SandboxUser } from "./sandbox-user.ts";
import { ToolInputError } from "./tool-input-error.ts";
import { WorkspaceDir, type OpenDir } from "./workspace-dir.ts";

// The workspace file tools. Every path is opened through WorkspaceDir, which
// never lets the kernel follow a symlink (a task's shell may be renaming
// things meanwhile), and every result is bounded so one call can not flood a
// small model's context.

export const READ_LIMIT_BYTES = 256 * 1024;
export const WRITE_LIMIT_BYTES = 1024 * 1024;
export const LIST_LIMIT = 500;
export const SEARCH_MATCH_LIMIT = 100;
/** Files larger than this are not searched. */
const SEARCH_FILE_LIMIT_BYTES = 1024 * 1024;
/** Directory entries visited by one search. */
const SEARCH_VISIT_LIMIT = 5_000;
const SEARCH_LINE_CHARS = 200;
/** Patterns are matched against at most this much of a line (keeps one file's scan short). */
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
  return WorkspaceDir.with(root, async (ws) => {
    const f = await ws.openFile(relPath);
    try {
      if (f.stat.size > READ_LIMIT_BYTES) {
        throw new ToolInputError(
          `'${relPath}' is ${kib(f.stat.size)} KiB; read_file returns at most ${kib(READ_LIMIT_BYTES)} KiB: ` +
            `use run_shell with head, tail, sed -n or grep to read part of it`,
        );
      }
      const buf = await readBounded(f.handle, f.stat.size, READ_LIMIT_BYTES);
      if (looksBinary(buf)) {
        throw new ToolInputError(
          `'${relPath}' is a binary file (${buf.length} bytes): use run_shell (e.g. file, xxd | head) to inspect it`,
        );
      }
      return buf.toString("utf8");
    } finally {
      await f.handle.close();
    }
  });
}

export interface WriteResult {
  /** Workspace-relative path written. */
  path: string;
  bytes: number;
}

export interface WriteOptions {
  /**
   * Who owns what the call creates (files and directories). Default: the
   * sandbox user when the worker is root, so the task's shell, which runs as
   * that user, can change what its tools wrote; null keeps the worker's own.
   */
  owner?: SandboxUser | null;
}

/** Write (create or replace) a text file; parent directories are created. */
export async function writeFile(
  root: string,
  relPath: string,
  content: string,
  opts: WriteOptions = {},
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
  const owner = opts.owner === undefined ? sandboxUser() : opts.owner;
  return WorkspaceDir.with(root, async (ws) => {
    const f = await ws.createFile(relPath, owner);
    try {
      // Through the descriptor just checked: truncating by path could hit another file.
      await f.handle.truncate(0);
      await f.handle.writeFile(content, "utf8");
    } finally {
      await f.handle.close();
    }
    return { path: f.rel, bytes };
  });
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
  return WorkspaceDir.with(root, async (ws) => {
    const start = await ws.openEntry(relPath);
    if (start.kind === "file") {
      await start.handle.close();
      return { entries: [start.rel], truncated: false };
    }
    const entries: string[] = [];
    const truncated = !(await walk(ws, start.dir, limit, (entry) => {
      entries.push(entry.rel + (entry.isDir ? "/" : ""));
      return entries.length < limit;
    }));
    return { entries, truncated };
  });
}

export interface SearchResult {
  /** `file:line: text` */
  matches: string[];
  truncated: boolean;
  /** How the pattern was used. */
  mode: "regex" | "text";
}

/**
 * Lines matching `pattern` under `relPath`: a regular expression when RE2
 * accepts it, plain text otherwise. Binary and very large files are skipped.
 */
export async function searchFiles(
  root: string,
  pattern: string,
  relPath = ".",
  limit = SEARCH_MATCH_LIMIT,
): Promise<SearchResult> {
  if (pattern === "") throw new ToolInputError("search_files needs a non-empty pattern");
  const { test, mode } = compilePattern(pattern);
  return WorkspaceDir.with(root, async (ws) => {
    const matches: string[] = [];
    /** Searches one open file (and closes it); false once the match limit is reached. */
    const searchOne = async (f: { handle: FileHandle; rel: string; size: number }) => {
      let buf: Buffer;
      try {
        if (f.size > SEARCH_FILE_LIMIT_BYTES) return true;
        buf = await readBounded(f.handle, f.size, SEARCH_FILE_LIMIT_BYTES);
      } finally {
        await f.handle.close();
      }
      if (looksBinary(buf)) return true;
      const lines = buf.toString("utf8").split("\n");
      for (const [i, line] of lines.entries()) {
        if (!test(line.slice(0, SEARCH_LINE_SCAN_CHARS))) continue;
        matches.push(`${f.rel}:${i + 1}: ${line.trim().slice(0, SEARCH_LINE_CHARS)}`);
        if (matches.length >= limit) return false;
      }
      return true;
    };
    const start = await ws.openEntry(relPath);
    if (start.kind === "file") {
      const complete = await searchOne({ ...start, size: start.stat.size });
      return { matches, truncated: !complete, mode };
    }
    let visited = 0;
    let stoppedByMatches = false;
    const complete = await walk(ws, start.dir, SEARCH_VISIT_LIMIT, async (entry) => {
      if (++visited > SEARCH_VISIT_LIMIT) return false;
      if (entry.isDir) return true;
      const f = await ws.openChildFile(entry.parent, entry.name);
      if (f && !(await searchOne({ ...f, size: f.stat.size }))) {
        stoppedByMatches = true;
        return false;
      }
      return true;
    });
    return { matches, truncated: !complete || stoppedByMatches, mode };
  });
}

/**
 * RE2 (re2js, pure JavaScript) when the pattern compiles there, else the
 * literal text. RE2 matches in time linear in the line, whatever the
 * pattern, so a model's `(a|a?)+b` can not stall the worker's event loop
 * the way a backtracking RegExp does. Patterns RE2 refuses (backreferences,
 * lookahead) are searched as plain text.
 */
function compilePattern(pattern: string): {
  test: (line: string) => boolean;
  mode: "regex" | "text";
} {
  let re: RE2JS | undefined;
  try {
    re = RE2JS.compile(pattern);
  } catch {
    re = undefined;
  }
  if (!re) return { test: (line) => line.includes(pattern), mode: "text" };
  const compiled = re;
  return { test: (line) => compiled.test(line), mode: "regex" };
}

interface WalkEntry {
  rel: string;
  name: string;
  isDir: boolean;
  /** The open directory the entry is in. */
  parent: OpenDir;
}

/**
 * Depth-first, sorted, not following symlinks (a link is listed, never
 * entered, and each directory is opened by name from its open parent, so a
 * walk can not leave the workspace even if a task renames things under it).
 * `visit` returns false to stop; walk returns false when stopped early.
 * `budget` bounds directories opened as well, so a huge tree costs bounded
 * time. Each directory is closed as the walk leaves it.
 */
async function walk(
  ws: WorkspaceDir,
  start: OpenDir,
  budget: number,
  visit: (e: WalkEntry) => boolean | Promise<boolean>,
): Promise<boolean> {
  let opened = 0;
  const recurse = async (d: OpenDir): Promise<boolean> => {
    try {
      if (++opened > budget) return false;
      for (const ent of await ws.entries(d)) {
        const isDir = ent.isDirectory();
        const rel = d.rel === "." ? ent.name : `${d.rel}/${ent.name}`;
        if (!(await visit({ rel, name: ent.name, isDir, parent: d }))) return false;
        if (!isDir || SKIPPED_DIRS.has(ent.name)) continue;
        const child = await ws.openChildDir(d, ent.name);
        if (child && !(await recurse(child))) return false;
      }
      return true;
    } finally {
      await d.handle.close();
    }
  };
  return recurse(start);
}

/** At most `limit` bytes from an open file of `size` bytes at its stat (it may have grown). */
async function readBounded(handle: FileHandle, size: number, limit: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.min(size, limit) + 1);
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, Math.min(got, limit));
}

/** A NUL byte in the first 8 KiB: what git and grep call binary. */
function looksBinary(buf: Buffer): boolean {
  return buf.subarray(0, 8192).includes(0);
}

function kib(bytes: number): number {
  return Math.ceil(bytes / 1024);
}
