import { constants, type Dirent, type Stats } from "node:fs";
import { mkdir, open, opendir, readlink, realpath, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { SandboxUser } from "./sandbox-user.ts";
import { ToolInputError } from "./tool-input-error.ts";
import { isInside, workspacePathParts } from "./workspace-path.ts";

/**
 * The workspace opened as a directory, and every path below it opened
 * through it, one component at a time, without ever letting the kernel
 * follow a symlink.
 *
 * Why: the file tools run in the worker, outside the sandbox, while a task's
 * shell may rename things in the same checkout. Checking a path and opening
 * it later (realpath, then open) loses to a command that swaps a directory
 * for a symlink in between (renameat2 RENAME_EXCHANGE). Node has no openat2,
 * so each step opens `/proc/self/fd/<dir fd>/<one name>` with O_NOFOLLOW:
 * the kernel jumps through the magic link to the directory this process
 * already holds open (whatever its path is now), looks up exactly one name
 * in it, and refuses a symlink there. A symlink met on the way is read
 * (readlink does not follow it) and its target walked the same way, from the
 * directory it lives in, so a link inside the workspace still works while
 * one that leads out is refused; whatever a racing rename makes readlink
 * return is just more text walked under the same rules. `..` pops a stack of
 * directories this walk opened itself, never the kernel's `..`.
 */

/** As the kernel's own limit for one lookup. */
const MAX_SYMLINKS = 40;
/** Lookups of one path, retries after a racing rename included. */
const MAX_STEPS = 4096;
const NOFOLLOW = constants.O_NOFOLLOW;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | NOFOLLOW;
/** O_NONBLOCK: opening a FIFO a task made must not hang a thread-pool thread. */
const READ_FLAGS = constants.O_RDONLY | NOFOLLOW | constants.O_NONBLOCK;
const WRITE_FLAGS = constants.O_WRONLY | NOFOLLOW | constants.O_NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW;

/** A directory held open, and its workspace-relative path when it was reached. */
export interface OpenDir {
  handle: FileHandle;
  /** Workspace-relative, `.` for the root. */
  rel: string;
}

export type OpenEntry =
  { kind: "dir"; dir: OpenDir } | { kind: "file"; handle: FileHandle; rel: string; stat: Stats };

export interface CreatedFile {
  handle: FileHandle;
  rel: string;
  /** False when an existing file is being replaced. */
  created: boolean;
}

interface Part {
  name: string;
  /** Came from a symlink's target (a missing part there is a dangling link). */
  viaLink: boolean;
}

type Want = "file" | "entry" | "create";

let procChecked = false;

export class WorkspaceDir {
  private readonly root: FileHandle;
  /** The root's real path when opened: absolute symlink targets are judged against it. */
  readonly rootReal: string;

  private constructor(root: FileHandle, rootReal: string) {
    this.root = root;
    this.rootReal = rootReal;
  }

  /** Open the workspace root (itself trusted: the worker chose it). Close it when done. */
  static async open(root: string): Promise<WorkspaceDir> {
    const rootReal = await realpath(root);
    const handle = await open(rootReal, DIR_FLAGS);
    if (!procChecked) {
      // Without /proc every lookup below would look like a missing file.
      try {
        await stat(fdPath(handle.fd));
        procChecked = true;
      } catch (err) {
        await handle.close();
        throw new Error(
          "the file tools need /proc mounted (they open paths through /proc/self/fd so a " +
            `concurrent rename can not redirect them): ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    return new WorkspaceDir(handle, rootReal);
  }

  /** Run `fn` with the workspace open, and close it however `fn` ends. */
  static async with<T>(root: string, fn: (ws: WorkspaceDir) => Promise<T>): Promise<T> {
    const ws = await WorkspaceDir.open(root);
    try {
      return await fn(ws);
    } finally {
      await ws.close();
    }
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** An existing regular file, open for reading. */
  async openFile(relPath: string): Promise<{ handle: FileHandle; rel: string; stat: Stats }> {
    const e = await this.resolve(relPath, "file", null);
    if (e.kind !== "file") throw new Error("unreachable: openFile resolved a directory");
    return e;
  }

  /** An existing file or directory (list_files and search_files take either). */
  async openEntry(relPath: string): Promise<OpenEntry> {
    return this.resolve(relPath, "entry", null);
  }

  /**
   * A regular file open for writing, created (with missing parent
   * directories) when absent, and then handed to `owner` so the task's own
   * shell can change what its tools wrote. The file is not truncated here.
   */
  async createFile(relPath: string, owner: SandboxUser | null): Promise<CreatedFile> {
    const e = await this.resolve(relPath, "create", owner);
    if (e.kind !== "file") throw new Error("unreachable: createFile resolved a directory");
    return { handle: e.handle, rel: e.rel, created: e.created };
  }

  /** The entries of an open directory, sorted by name. */
  async entries(dir: OpenDir): Promise<Dirent[]> {
    const out: Dirent[] = [];
    for await (const ent of await opendir(fdPath(dir.handle.fd))) out.push(ent);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A subdirectory by name; null when it is no longer a directory (renamed, or a symlink). */
  async openChildDir(dir: OpenDir, name: string): Promise<OpenDir | null> {
    try {
      return { handle: await open(childPath(dir, name), DIR_FLAGS), rel: join(dir.rel, name) };
    } catch (err) {
      if (isCode(err, "ENOENT", "ENOTDIR", "ELOOP", "EACCES")) return null;
      throw err;
    }
  }

  /** A regular file by name; null when it is not one (any more). */
  async openChildFile(
    dir: OpenDir,
    name: string,
  ): Promise<{ handle: FileHandle; rel: string; stat: Stats } | null> {
    let handle: FileHandle;
    try {
      handle = await open(childPath(dir, name), READ_FLAGS);
    } catch (err) {
      if (isCode(err, "ENOENT", "ENOTDIR", "ELOOP", "EACCES", "ENXIO")) return null;
      throw err;
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return null;
    }
    return { handle, rel: join(dir.rel, name), stat: st };
  }

  private async resolve(
    relPath: string,
    want: Want,
    owner: SandboxUser | null,
  ): Promise<OpenEntry & { created: boolean }> {
    const shown = `'${relPath}'`;
    const queue: Part[] = workspacePathParts(relPath).map((name) => ({ name, viaLink: false }));
    // The directories this walk holds; [0] is the root, which the walk never closes.
    const stack: OpenDir[] = [{ handle: this.root, rel: "." }];
    let links = 0;
    let steps = 0;
    const top = (): OpenDir => stack[stack.length - 1]!;
    const release = async (): Promise<void> => {
      while (stack.length > 1) await stack.pop()!.handle.close();
    };
    const leaves = (viaLink: boolean): ToolInputError =>
      new ToolInputError(
        `path ${shown} leaves the workspace${viaLink ? " (through a symlink)" : ""}`,
      );
    const missing = (part: Part): ToolInputError =>
      part.viaLink
        ? new ToolInputError(
            `path ${shown} is a symlink to a missing target: remove the link or use the target's path`,
          )
        : new ToolInputError(`path ${shown} does not exist`);
    /** `name` in the current directory is a symlink: queue its target. False: it is not one. */
    const follow = async (part: Part): Promise<boolean> => {
      let target: string;
      try {
        target = await readlink(childPath(top(), part.name));
      } catch (err) {
        if (isCode(err, "EINVAL")) return false;
        if (isCode(err, "ENOENT")) throw missing(part);
        throw err;
      }
      if (++links > MAX_SYMLINKS) {
        throw new ToolInputError(`path ${shown} goes through a symlink loop`);
      }
      if (path.isAbsolute(target)) {
        if (!isInside(this.rootReal, target)) throw leaves(true);
        target = path.relative(this.rootReal, target);
        await release();
      }
      const parts = target.split("/").filter((n) => n !== "" && n !== ".");
      queue.unshift(...parts.map((name) => ({ name, viaLink: true })));
      return true;
    };

    try {
      while (queue.length > 0) {
        const part = queue.shift()!;
        if (++steps > MAX_STEPS) {
          throw new ToolInputError(`path ${shown} keeps changing while it is opened: try again`);
        }
        if (part.name === "..") {
          if (stack.length === 1) throw leaves(part.viaLink);
          await stack.pop()!.handle.close();
          continue;
        }
        const last = queue.length === 0;
        const dir = top();
        const at = childPath(dir, part.name);
        const rel = join(dir.rel, part.name);

        if (!last) {
          try {
            stack.push({ handle: await open(at, DIR_FLAGS), rel });
            continue;
          } catch (err) {
            if (isCode(err, "ENOENT")) {
              if (want !== "create" || part.viaLink) throw missing(part);
              const made = await this.makeDir(dir, part.name, rel, owner);
              if (made) stack.push(made);
              else queue.unshift(part); // someone made it first: look again
              continue;
            }
            if (!isCode(err, "ENOTDIR", "ELOOP")) throw err;
            if (await follow(part)) continue;
            throw new ToolInputError(`path ${shown} goes through a file as if it were a directory`);
          }
        }

        // The last name: a file (or, for list/search, possibly a directory).
        if (want === "create") {
          const opened = await this.openForWrite(at, owner, shown, !part.viaLink);
          if (opened === "symlink") {
            if (!(await follow(part))) queue.unshift(part); // replaced meanwhile: look again
            continue;
          }
          if (opened === "dangling") throw missing(part);
          if (opened === "retry") {
            queue.unshift(part);
            continue;
          }
          return { kind: "file", ...opened, rel };
        }
        let handle: FileHandle;
        try {
          handle = await open(at, READ_FLAGS);
        } catch (err) {
          if (isCode(err, "ENOENT")) throw missing(part);
          if (isCode(err, "ELOOP")) {
            if (!(await follow(part))) queue.unshift(part); // replaced meanwhile: look again
            continue;
          }
          if (isCode(err, "ENXIO")) throw notRegular(shown);
          throw err;
        }
        const st = await handle.stat();
        if (st.isDirectory()) {
          if (want === "entry") return { kind: "dir", dir: { handle, rel }, created: false };
          await handle.close();
          throw new ToolInputError(`${shown} is a directory: use list_files to see what is in it`);
        }
        if (!st.isFile()) {
          await handle.close();
          throw notRegular(shown);
        }
        return { kind: "file", handle, rel, stat: st, created: false };
      }
      // The path ended on `..`, or on a link to a directory, or it is the root.
      const dir = top();
      if (want === "entry") {
        // The caller owns what it gets: the root is reopened, not handed out.
        if (stack.length === 1)
          return { kind: "dir", dir: await this.reopenRoot(), created: false };
        stack.pop();
        return { kind: "dir", dir, created: false };
      }
      throw new ToolInputError(
        dir.rel === "."
          ? `path ${shown} is the workspace itself, not a file`
          : `${shown} is a directory: give a file path inside it`,
      );
    } finally {
      await release();
    }
  }

  /** The root again, as a handle the caller may close. */
  private async reopenRoot(): Promise<OpenDir> {
    // Through the magic link itself (no O_NOFOLLOW: that would refuse the link).
    const handle = await open(fdPath(this.root.fd), constants.O_RDONLY | constants.O_DIRECTORY);
    return { handle, rel: "." };
  }

  /** mkdir one name in `dir`, then open what is there without following it. Null: it existed. */
  private async makeDir(
    dir: OpenDir,
    name: string,
    rel: string,
    owner: SandboxUser | null,
  ): Promise<OpenDir | null> {
    try {
      await mkdir(childPath(dir, name), 0o755);
    } catch (err) {
      if (isCode(err, "EEXIST")) return null;
      throw err;
    }
    // A racing rename may have put something else here: DIR_FLAGS refuses a link.
    const handle = await open(childPath(dir, name), DIR_FLAGS);
    if (owner) await handle.chown(owner.uid, owner.gid);
    return { handle, rel };
  }

  /** The file at `at` for writing; "retry" when a racing change made it vanish or appear. */
  private async openForWrite(
    at: string,
    owner: SandboxUser | null,
    shown: string,
    mayCreate: boolean,
  ): Promise<
    { handle: FileHandle; stat: Stats; created: boolean } | "symlink" | "dangling" | "retry"
  > {
    let handle: FileHandle;
    let created = false;
    try {
      handle = await open(at, WRITE_FLAGS);
    } catch (err) {
      if (isCode(err, "ELOOP")) return "symlink";
      if (isCode(err, "EISDIR")) {
        throw new ToolInputError(`${shown} is a directory: give a file path inside it`);
      }
      if (isCode(err, "ENXIO")) throw notRegular(shown);
      if (!isCode(err, "ENOENT")) throw err;
      if (!mayCreate) return "dangling";
      try {
        // O_EXCL never follows a symlink, and says whether this call made the file.
        handle = await open(at, CREATE_FLAGS, 0o644);
        created = true;
      } catch (e) {
        if (isCode(e, "EEXIST")) return "retry";
        throw e;
      }
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      throw notRegular(shown);
    }
    if (st.nlink > 1) {
      // Another name for the same file may be anywhere on this file system.
      await handle.close();
      throw new ToolInputError(
        `${shown} has other hard links: remove it first (rm) or write another path`,
      );
    }
    if (created && owner) await handle.chown(owner.uid, owner.gid);
    return { handle, stat: st, created };
  }
}

function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function childPath(dir: OpenDir, name: string): string {
  return `${fdPath(dir.handle.fd)}/${name}`;
}

function join(rel: string, name: string): string {
  return rel === "." ? name : `${rel}/${name}`;
}

function notRegular(shown: string): ToolInputError {
  return new ToolInputError(`${shown} is not a regular file (a FIFO, socket or device)`);
}

function isCode(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}
