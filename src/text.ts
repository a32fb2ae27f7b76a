/** Small text helpers shared by the CLI views and the reports. */

/** Cut to `max` visible characters with an ellipsis, on one line. */
export function oneLine(s: string, max: number): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return [...flat].length > max ? `${[...flat].slice(0, max - 1).join("")}…` : flat;
}
