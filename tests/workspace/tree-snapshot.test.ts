import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fsClock,
  indexEntryCount,
  onlyIndexed,
  unchangedSince,
  type Stamp,
  type TreeSnapshot,
} from "../../src/workspace/tree-snapshot.ts";

const file = (over: Partial<Stamp> = {}): Stamp => ({
  kind: "file",
  mode: 0o100644,
  uid: 0,
  gid: 0,
  size: 3,
  ino: 10,
  nlink: 1,
  mtimeMs: 100,
  ctimeMs: 100,
  ...over,
});
const dir = (over: Partial<Stamp> = {}): Stamp => file({ kind: "dir", mode: 0o40755, ...over });

function snap(entries: [string, Stamp][], over: Partial<TreeSnapshot> = {}): TreeSnapshot {
  return { takenAt: 200, entries: new Map(entries), top: dir({ ino: 1 }), complete: true, ...over };
}

describe("unchangedSince", () => {
  const before = snap([
    ["src", dir({ ino: 2 })],
    ["src/a.ts", file()],
  ]);

  it("the same stamps, older than the earlier walk's clock: unchanged", () => {
    // a directory's times move with its entries: only its names and identity count
    const now = snap(
      [
        ["src", dir({ ino: 2, mtimeMs: 300, ctimeMs: 300, size: 8192 })],
        ["src/a.ts", file()],
      ],
      { takenAt: 400 },
    );
    expect(unchangedSince(before, now)).toBe(true);
  });

  it("any change of a file's stamp, an entry more or less, or the top's owner: changed", () => {
    for (const a of [
      file({ ctimeMs: 150 }), // rewritten with its mtime set back
      file({ size: 4 }),
      file({ ino: 11 }), // replaced
      file({ mode: 0o100755 }),
      file({ uid: 65534 }),
      file({ nlink: 2 }), // hard-linked from elsewhere
      file({ kind: "symlink", target: "x" }),
    ]) {
      expect(
        unchangedSince(
          before,
          snap([
            ["src", dir({ ino: 2 })],
            ["src/a.ts", a],
          ]),
        ),
      ).toBe(false);
    }
    expect(unchangedSince(before, snap([["src", dir({ ino: 2 })]]))).toBe(false);
    expect(
      unchangedSince(
        before,
        snap([
          ["src", dir({ ino: 2 })],
          ["src/a.ts", file()],
          ["debug.log", file({ ino: 12 })],
        ]),
      ),
    ).toBe(false);
    expect(
      unchangedSince(before, { ...snap([...before.entries]), top: dir({ ino: 1, mode: 0o40000 }) }),
    ).toBe(false);
  });

  it("an entry changed in the clock tick of the earlier walk is not trusted", () => {
    const racy = snap([["a", file({ ctimeMs: 200 })]]);
    expect(unchangedSince(racy, snap([["a", file({ ctimeMs: 200 })]]))).toBe(false);
  });

  it("an incomplete walk proves nothing", () => {
    expect(unchangedSince({ ...before, complete: false }, before)).toBe(false);
    expect(unchangedSince(before, { ...before, complete: false })).toBe(false);
  });
});

describe("onlyIndexed", () => {
  it("as many files as the index lists, and no directory without a file below it", () => {
    const s = snap([
      ["a", dir()],
      ["a/b", dir()],
      ["a/b/c.txt", file()],
      ["l", file({ kind: "symlink", target: "a" })],
    ]);
    expect(onlyIndexed(s, 2)).toBe(true);
    expect(onlyIndexed(s, 1)).toBe(false); // an ignored file
    expect(onlyIndexed(s, null)).toBe(false);
    expect(onlyIndexed(snap([...s.entries, ["a/empty", dir()]]), 2)).toBe(false);
    expect(onlyIndexed({ ...s, complete: false }, 2)).toBe(false);
  });
});

describe("fsClock and indexEntryCount", () => {
  let d: string;
  beforeAll(async () => {
    d = await mkdtemp(path.join(tmpdir(), "squad-snapshot-"));
  });
  afterAll(async () => {
    await rm(d, { recursive: true, force: true });
  });

  it("the clock is made when missing and never goes back", () => {
    const f = path.join(d, "clock");
    const a = fsClock(f);
    const b = fsClock(f);
    expect(b.nowMs).toBeGreaterThanOrEqual(a.nowMs);
    expect(b.dev).toBe(a.dev);
  });

  it("reads a git index header's entry count, null for anything else", async () => {
    const idx = Buffer.alloc(12);
    idx.write("DIRC", 0, "latin1");
    idx.writeUInt32BE(2, 4);
    idx.writeUInt32BE(1234, 8);
    await writeFile(path.join(d, "index"), idx);
    expect(indexEntryCount(path.join(d, "index"))).toBe(1234);
    await writeFile(path.join(d, "junk"), "not an index at all");
    expect(indexEntryCount(path.join(d, "junk"))).toBeNull();
    expect(indexEntryCount(path.join(d, "missing"))).toBeNull();
  });
});
