import { describe, expect, it } from "vitest";
import {
  parseChanges,
  parseDiffChanges,
  parseNameStatus,
  parseNumstat,
} from "../../src/workspace/changes.ts";
import { parseBundleHeader } from "../../src/workspace/bundle-header.ts";
import { parseCommitLog } from "../../src/workspace/commit-log.ts";

const B = "a".repeat(40);
const C = "b".repeat(40);

describe("parseDiffChanges", () => {
  it("reads --raw and --numstat from one output, as parseChanges reads them from two", () => {
    const z = (id: string) => id.repeat(7);
    const raw =
      `:100644 100644 ${z("1")} ${z("2")} M\0src/a.ts\0` +
      `:000000 100644 ${z("0")} ${z("3")} A\0logo.png\0` +
      `:100644 100644 ${z("4")} ${z("4")} R100\0old name.txt\0new name.txt\0` +
      `:100644 000000 ${z("5")} ${z("0")} D\0:gone.md\0`;
    const numstat =
      "3\t1\tsrc/a.ts\0-\t-\tlogo.png\0" +
      "0\t0\t\0old name.txt\0new name.txt\0" +
      "0\t5\t:gone.md\0";
    const nameStatus = "M\0src/a.ts\0A\0logo.png\0R100\0old name.txt\0new name.txt\0D\0:gone.md\0";
    expect(parseDiffChanges(B, C, raw + numstat)).toEqual(parseChanges(B, C, numstat, nameStatus));
    expect(parseDiffChanges(B, C, "").files).toEqual([]);
  });
});

describe("parseChanges", () => {
  it("joins numstat and name-status per path, renames and binaries included", () => {
    const numstat =
      "3\t1\tsrc/a.ts\0-\t-\tlogo.png\0" +
      "0\t0\t\0old name.txt\0new name.txt\0" +
      "0\t5\tgone.md\0";
    const nameStatus = "M\0src/a.ts\0A\0logo.png\0R100\0old name.txt\0new name.txt\0D\0gone.md\0";
    expect(parseChanges(B, C, numstat, nameStatus)).toEqual({
      base: B,
      commit: C,
      files: [
        { path: "gone.md", status: "deleted", additions: 0, deletions: 5 },
        { path: "logo.png", status: "added", additions: 0, deletions: 0, binary: true },
        {
          path: "new name.txt",
          status: "renamed",
          from: "old name.txt",
          additions: 0,
          deletions: 0,
        },
        { path: "src/a.ts", status: "modified", additions: 3, deletions: 1 },
      ],
      additions: 3,
      deletions: 6,
    });
  });

  it("an empty diff is no files and zero totals", () => {
    expect(parseChanges(B, C, "", "")).toMatchObject({ files: [], additions: 0, deletions: 0 });
  });

  it("keeps paths with tabs, newlines and non-ASCII as they are (-z)", () => {
    const path = "we\tird\nnäme.txt";
    expect(parseNumstat(`1\t0\t${path}\0`).get(path)).toEqual({
      additions: 1,
      deletions: 0,
      binary: false,
    });
    expect(parseNameStatus(`T\0${path}\0`)).toEqual([{ path, status: "type_changed" }]);
  });

  it("refuses output it does not understand", () => {
    expect(() => parseNumstat("oops\0")).toThrow(/numstat/);
    expect(() => parseNameStatus("X\0p\0")).toThrow(/name-status/);
    expect(() => parseNameStatus("R100\0only-old\0")).toThrow(/truncated/);
  });
});

describe("parseBundleHeader", () => {
  it("reads prerequisites and refs of a v2 bundle, stopping at the pack", () => {
    const text = `# v2 git bundle\n-${B} parent subject\n${C} refs/squad/bundle/${C}\n\nPACK\0\0\n\n`;
    expect(parseBundleHeader(new TextEncoder().encode(text))).toEqual({
      prerequisites: [B],
      refs: [{ commit: C, ref: `refs/squad/bundle/${C}` }],
    });
  });
  it("refuses what is not a bundle", () => {
    expect(() => parseBundleHeader(new TextEncoder().encode("hello\n\n"))).toThrow(
      /not a git bundle/,
    );
    expect(() => parseBundleHeader(new TextEncoder().encode("# v2 git bundle\n"))).toThrow(
      /end of header/,
    );
    expect(() =>
      parseBundleHeader(new TextEncoder().encode("# v2 git bundle\nbad line\n\n")),
    ).toThrow(/header line/);
  });
});

describe("parseCommitLog", () => {
  it("reads commits with their trailers", () => {
    const out =
      `${C}\0${B}\0w1/i1 <w1@squad.local>\x002026-01-01T00:00:00+00:00\0Add a\0Squad-Mission: m1\nSquad-Task: t1\n\x1e\n` +
      `${B}\0\0op <op@x>\x002026-01-01T00:00:00+00:00\0base\0\x1e\n`;
    expect(parseCommitLog(out)).toEqual([
      {
        commit: C,
        parents: [B],
        author: "w1/i1 <w1@squad.local>",
        date: "2026-01-01T00:00:00+00:00",
        subject: "Add a",
        trailers: { "Squad-Mission": "m1", "Squad-Task": "t1" },
      },
      {
        commit: B,
        parents: [],
        author: "op <op@x>",
        date: "2026-01-01T00:00:00+00:00",
        subject: "base",
        trailers: {},
      },
    ]);
  });
});
