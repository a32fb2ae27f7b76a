import { stripVTControlCharacters } from "node:util";

export interface TableOptions {
  /** Per column; default left. Numbers read better right-aligned. */
  align?: ReadonlyArray<"left" | "right">;
  /** Spaces between columns. Default 2. */
  gap?: number;
  /** Leading spaces of every line. */
  indent?: number;
}

/**
 * A plain-text table: a header row and aligned columns, no borders. Cells may
 * hold ANSI colour; widths count only the visible characters.
 */
export function renderTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  opts: TableOptions = {},
): string {
  const gap = " ".repeat(opts.gap ?? 2);
  const indent = " ".repeat(opts.indent ?? 0);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => visibleWidth(r[i] ?? ""))));
  return all
    .map((row) => {
      const cells = header.map((_, i) => {
        const cell = row[i] ?? "";
        const pad = " ".repeat(widths[i]! - visibleWidth(cell));
        // The last column is not padded on the right: no trailing spaces.
        if (opts.align?.[i] === "right") return pad + cell;
        return i === header.length - 1 ? cell : cell + pad;
      });
      return (indent + cells.join(gap)).trimEnd();
    })
    .join("\n");
}

export function visibleWidth(s: string): number {
  return [...stripVTControlCharacters(s)].length;
}

export { oneLine } from "../text.ts";
