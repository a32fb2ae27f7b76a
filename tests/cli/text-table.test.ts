/**
 * Column widths are terminal columns: a CJK character or an emoji takes two,
 * ANSI colour none. Counting code units (`.length`) broke the tables for
 * titles written in Chinese or with emoji.
 */
import { describe, expect, it } from "vitest";
import { styleText } from "node:util";
import {
  padEndToWidth,
  renderTable,
  truncateToWidth,
  visibleWidth,
} from "../../src/cli/text-table.ts";

describe("text tables", () => {
  it.each([
    ["abc", 3],
    ["构建库", 6],
    ["🚀 go", 5],
    ["👩‍💻", 2],
    [styleText("red", "ok"), 2],
    ["e\u0301", 1],
  ])("%j takes %i columns", (s, n) => {
    expect(visibleWidth(s)).toBe(n);
  });

  it("aligns columns whatever script or emoji the cells hold", () => {
    const out = renderTable(
      ["ID", "TITLE", "STATUS"],
      [
        ["t1", "构建文本库", "done"],
        ["t2", "🚀 ship it", "running"],
        ["t3", "plain", "queued"],
      ],
    );
    const lines = out.split("\n");
    const statusColumn = lines.map((l) => visibleWidth(l.slice(0, l.lastIndexOf(" ") + 1)));
    expect(new Set(statusColumn).size).toBe(1);
  });

  it("truncates and pads by columns, never splitting a character", () => {
    expect(truncateToWidth("构建文本库", 5)).toBe("构建…");
    expect(visibleWidth(truncateToWidth("构建文本库", 5))).toBeLessThanOrEqual(5);
    expect(truncateToWidth("👩‍💻👩‍💻👩‍💻", 4)).toBe("👩‍💻…");
    expect(truncateToWidth("short", 10)).toBe("short");
    expect(truncateToWidth("abc", 1)).toBe("…");
    expect(padEndToWidth("构建", 6)).toBe("构建  ");
    expect(visibleWidth(padEndToWidth("🚀", 4))).toBe(4);
  });
});
