/**
 * `git log` of a mission's commits, as records: who (author), what (subject)
 * and the Squad trailers (mission, task, attempt, agent). Pure parse of the
 * format LOG_FORMAT asks for.
 */
export interface CommitLogEntry {
  commit: string;
  parents: string[];
  /** `Name <email>`. */
  author: string;
  /** ISO 8601 author date. */
  date: string;
  subject: string;
  /** `Squad-Task: t1` → { "Squad-Task": "t1" } (the last value of a repeated key). */
  trailers: Record<string, string>;
}

/** Fields separated by NUL, records by RS (0x1e). */
export const LOG_FORMAT = "%H%x00%P%x00%an <%ae>%x00%aI%x00%s%x00%(trailers:only,unfold)%x1e";

export function parseCommitLog(out: string): CommitLogEntry[] {
  const entries: CommitLogEntry[] = [];
  for (const raw of out.split("\x1e")) {
    const record = raw.replace(/^\n+/, "");
    if (record === "") continue;
    const [commit, parents, author, date, subject, trailerText] = record.split("\0");
    if (!commit || author === undefined || date === undefined || subject === undefined) {
      throw new Error(`unexpected git log record: ${JSON.stringify(record.slice(0, 80))}`);
    }
    const trailers: Record<string, string> = {};
    for (const line of (trailerText ?? "").split("\n")) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) trailers[m[1]!] = m[2]!;
    }
    entries.push({
      commit,
      parents: parents ? parents.split(" ") : [],
      author,
      date,
      subject,
      trailers,
    });
  }
  return entries;
}
