/** Small text helpers shared by the CLI views and the reports. */

/** Cut to `max` visible characters with an ellipsis, on one line. */
export function oneLine(s: string, max: number): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return [...flat].length > max ? `${[...flat].slice(0, max - 1).join("")}…` : flat;
}

/** A size in binary units: `512 B`, `12.0 KiB`, `3.4 MiB`, `1.2 GiB`. */
export function bytesText(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v.toFixed(1)} ${units[i]}`;
}
