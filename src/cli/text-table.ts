import stringWidth from "string-width";

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
 * hold ANSI colour; widths are terminal columns (a CJK character or an emoji
 * takes two), so tables stay aligned whatever the titles are written in.
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

/** Terminal columns `s` takes, ANSI colour codes not counted. */
export function visibleWidth(s: string): number {
  return stringWidth(s);
}

export { oneLine } from "../text.ts";

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** `s` cut to at most `columns` terminal columns, with "…" when cut (plain text, no ANSI). */
export function truncateToWidth(s: string, columns: number): string {
  if (visibleWidth(s) <= columns) return s;
  if (columns <= 1) return "…";
  let out = "";
  let used = 0;
  for (const { segment } of graphemes.segment(s)) {
    const w = visibleWidth(segment);
    if (used + w > columns - 1) break;
    out += segment;
    used += w;
  }
  return `${out}…`;
}

/** `s` padded with spaces on the right to `columns` terminal columns. */
export function padEndToWidth(s: string, columns: number): string {
  return s + " ".repeat(Math.max(0, columns - visibleWidth(s)));
}
