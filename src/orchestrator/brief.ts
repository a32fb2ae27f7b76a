/**
 * Mission briefs: Markdown with optional YAML front matter.
 *
 *   ---
 *   title: Build the thing
 *   agents: [builder, tester]
 *   budget: { tokens: 200000, time: 30m }
 *   workspace: ./app               # optional: a git repository or a directory to start from
 *   deliver: { push: origin }      # optional: also push the result branch to this remote
 *   plan: { waves: [...] }        # optional explicit plan (the contract's shape)
 *   ---
 *   # Build the thing
 *   What the mission should achieve...
 *
 * Every problem is a BadInputError (exit 2) that names the line of the brief
 * file or the task it is about, so the author can fix it without guessing.
 */
import path from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { BadInputError } from "../errors.ts";
import { AgentName } from "../schema/identifiers.ts";
import { validatePlan, type NormalizedPlan } from "./plan-validation.ts";

export interface Brief {
  title: string;
  /** Roster entries the mission may use; null: any. */
  agents: string[] | null;
  budget: { tokens?: number; time_s?: number };
  workspace?: string;
  /** Where the mission's result goes besides the workspace repository's squad/<mission> branch. */
  deliver?: { push?: string };
  /** The explicit plan, validated and normalized; null: the planner writes one. */
  plan: NormalizedPlan | null;
  /** The Markdown after the front matter. */
  body: string;
  sourcePath: string | null;
}

export interface ParseBriefOptions {
  sourcePath?: string | null;
  /** Agent names of the roster; omitted: agent names are not checked against it. */
  knownAgents?: readonly string[];
}

export const MAX_BRIEF_BYTES = 1024 * 1024;

const FRONT_MATTER_KEYS = ["title", "agents", "budget", "workspace", "deliver", "plan"] as const;

const FrontMatter = z.strictObject({
  title: z.string().trim().min(1, "the title is empty").optional(),
  agents: z.array(AgentName).min(1, "list at least one agent, or leave agents out").optional(),
  budget: z
    .strictObject({
      tokens: z.number().int().positive().optional(),
      time_s: z.number().positive().optional(),
      /** "30m", "1h30m", "90s", or seconds. */
      time: z.union([z.string(), z.number().positive()]).optional(),
    })
    .optional(),
  workspace: z.string().trim().min(1, "the workspace is empty").optional(),
  deliver: z
    .strictObject({
      /** A remote of the workspace repository, or a URL; pushed with the user's own git credentials. */
      push: z
        .string()
        .trim()
        .min(1, "the remote is empty")
        .refine((s) => !s.startsWith("-"), "a remote is a name or a URL, not an option")
        .optional(),
    })
    .optional(),
  // Checked by validatePlan, whose messages name the task.
  plan: z.unknown().optional(),
});

/** Parse and validate a brief; throws BadInputError naming the line or task. */
export function parseBrief(text: string, opts: ParseBriefOptions = {}): Brief {
  const sourcePath = opts.sourcePath ?? null;
  const name = sourcePath ?? "brief";
  const fail = (problems: string[]): never => {
    throw new BadInputError(
      problems.length === 1
        ? `invalid brief ${name}: ${problems[0]}`
        : `invalid brief ${name}:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  };

  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_BRIEF_BYTES) {
    fail([`it is ${bytes} bytes; a brief may be at most 1 MiB (${MAX_BRIEF_BYTES} bytes)`]);
  }
  if (looksBinary(text)) {
    fail(["it contains NUL or control bytes: this looks like a binary file, not Markdown"]);
  }

  const normalized = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const split = splitFrontMatter(normalized);
  if ("error" in split) return fail([split.error]);
  const { yamlText, body, yamlFirstLine } = split;

  let front: z.infer<typeof FrontMatter> = {};
  let lineOf: (p: ReadonlyArray<PropertyKey>) => number | null = () => null;
  if (yamlText !== null) {
    const lineCounter = new LineCounter();
    const doc = parseDocument(yamlText, { lineCounter, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length) {
      fail(
        doc.errors.map((e) => {
          const line = e.linePos?.[0]?.line;
          const msg = (e.message.split("\n")[0] ?? e.message).replace(
            / at line \d+, column \d+:?$/,
            "",
          );
          return line !== undefined ? `line ${line + yamlFirstLine - 1}: ${msg}` : msg;
        }),
      );
    }
    const d = doc;
    lineOf = (p) => {
      // The deepest node the path reaches: its first line.
      for (let n = p.length; n >= 0; n--) {
        const node = d.getIn(p.slice(0, n) as unknown[], true) as
          { range?: [number, number, number] } | undefined;
        if (node && typeof node === "object" && node.range) {
          return lineCounter.linePos(node.range[0]).line + yamlFirstLine - 1;
        }
      }
      return null;
    };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      return fail([`front matter: ${(e as Error).message}`]);
    }
    if (value === null || value === undefined) value = {};
    if (typeof value !== "object" || Array.isArray(value)) {
      fail([
        `line ${yamlFirstLine}: the front matter must be a mapping of keys (${FRONT_MATTER_KEYS.join(", ")})`,
      ]);
    }
    const r = FrontMatter.safeParse(value);
    if (!r.success) {
      fail(
        r.error.issues.map((issue) => {
          if (issue.code === "unrecognized_keys") {
            const keys = issue.keys;
            const line = lineOf([...issue.path, keys[0]!]);
            const allowed =
              issue.path.length === 0
                ? FRONT_MATTER_KEYS.join(", ")
                : issue.path[0] === "deliver"
                  ? "push"
                  : "tokens, time_s, time";
            const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
            return `${line !== null ? `line ${line}: ` : ""}${where}unknown key${keys.length > 1 ? "s" : ""} ${keys
              .map((k) => `"${k}"`)
              .join(", ")} (allowed: ${allowed})`;
          }
          const line = lineOf(issue.path);
          return `${line !== null ? `line ${line}: ` : ""}${issue.path.join(".")}: ${issue.message}`;
        }),
      );
    }
    front = r.data!;
  }

  const problems: string[] = [];
  const at = (p: PropertyKey[]) => {
    const line = lineOf(p);
    return line !== null ? `line ${line}: ` : "";
  };

  // Budget.
  const budget: Brief["budget"] = {};
  if (front.budget?.tokens !== undefined) budget.tokens = front.budget.tokens;
  if (front.budget?.time_s !== undefined && front.budget.time !== undefined) {
    problems.push(`${at(["budget", "time"])}budget: give time or time_s, not both`);
  } else if (front.budget?.time_s !== undefined) {
    budget.time_s = front.budget.time_s;
  } else if (front.budget?.time !== undefined) {
    const s = parseDuration(front.budget.time);
    if (s === null) {
      problems.push(
        `${at(["budget", "time"])}budget.time: ${JSON.stringify(front.budget.time)} is not a duration (use e.g. 90s, 30m, 1h30m, or seconds)`,
      );
    } else {
      budget.time_s = s;
    }
  }

  // Agents: the brief's list must come from the roster; the plan from the brief's list.
  const known = opts.knownAgents ? [...opts.knownAgents] : null;
  if (front.agents && known) {
    front.agents.forEach((a, i) => {
      if (!known.includes(a)) {
        problems.push(
          `${at(["agents", i])}agents: "${a}" is not in the roster (known agents: ${known.join(", ") || "none"})`,
        );
      }
    });
  }
  const allowed = front.agents ?? known;

  let plan: NormalizedPlan | null = null;
  if (front.plan !== undefined && front.plan !== null) {
    const v = validatePlan(front.plan, { agents: allowed });
    if (v.ok) {
      plan = v.plan;
    } else {
      const taskLines = taskLineIndex(front.plan, lineOf);
      for (const p of v.problems) {
        // The task a problem is about; for a cycle, the task it starts from.
        const m = /^(?:task ([A-Za-z0-9_-]+)\b|dependency cycle: ([A-Za-z0-9_-]+) )/.exec(p);
        const id = m?.[1] ?? m?.[2];
        const lines = id !== undefined ? taskLines.get(id) : undefined;
        // A duplicate is where the id is used again; anything else, where the task first is.
        const line = / duplicate id /.test(p) ? (lines?.[1] ?? lines?.[0]) : lines?.[0];
        problems.push(`${line !== undefined ? `line ${line}: ` : ""}plan: ${p}`);
      }
    }
  }

  const trimmedBody = body.trim();
  if (!trimmedBody && front.plan == null) {
    problems.push(
      "the brief has no body and no plan: describe what the mission should achieve, or give an explicit plan",
    );
  }
  if (problems.length) fail(problems);

  const title =
    front.title ??
    firstHeading(body) ??
    (sourcePath ? path.basename(sourcePath, path.extname(sourcePath)) : null) ??
    "untitled mission";

  return {
    title,
    agents: front.agents ?? null,
    budget,
    ...(front.workspace !== undefined ? { workspace: front.workspace } : {}),
    ...(front.deliver !== undefined ? { deliver: { ...front.deliver } } : {}),
    plan,
    body: trimmedBody,
    sourcePath,
  };
}

/** Seconds in "90s", "30m", "1h30m", "2h", "1.5h", "90" or 90; null when not a duration. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : null;
  const s = value.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) > 0 ? Number(s) : null;
  if (!/^(\d+(\.\d+)?\s*(h|m|s)\s*)+$/.test(s)) return null;
  const unit = { h: 3600, m: 60, s: 1 } as const;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)\s*(h|m|s)/g)) {
    total += Number(m[1]) * unit[m[2] as keyof typeof unit];
  }
  return total > 0 ? total : null;
}

type Split = { yamlText: string | null; body: string; yamlFirstLine: number } | { error: string };

/** Separate `---` front matter from the body; `yamlFirstLine` is the file line of the YAML's first line. */
function splitFrontMatter(text: string): Split {
  const lines = text.split("\n");
  if (!/^---[ \t]*$/.test(lines[0] ?? "")) return { yamlText: null, body: text, yamlFirstLine: 1 };
  const end = lines.findIndex((l, i) => i > 0 && /^(---|\.\.\.)[ \t]*$/.test(l));
  if (end === -1) {
    return { error: "line 1: the front matter opened with --- is never closed by a --- line" };
  }
  return {
    yamlText: lines.slice(1, end).join("\n"),
    body: lines.slice(end + 1).join("\n"),
    yamlFirstLine: 2,
  };
}

/** The text of the first `# heading` outside code fences. */
function firstHeading(body: string): string | null {
  let fence: string | null = null;
  for (const line of body.split("\n")) {
    const f = /^\s{0,3}(```+|~~~+)/.exec(line);
    if (f) {
      if (fence === null) fence = f[1]![0]!;
      else if (f[1]![0] === fence) fence = null;
      continue;
    }
    if (fence !== null) continue;
    const h = /^\s{0,3}#[ \t]+(.+?)[ \t]*#*[ \t]*$/.exec(line);
    if (h && h[1]!.trim()) return h[1]!.trim();
  }
  return null;
}

/** Task id → lines of its entries in the front matter, in order (more than one: a duplicate id). */
function taskLineIndex(
  plan: unknown,
  lineOf: (p: ReadonlyArray<PropertyKey>) => number | null,
): Map<string, number[]> {
  const index = new Map<string, number[]>();
  const waves = (plan as { waves?: unknown } | null)?.waves;
  if (!Array.isArray(waves)) return index;
  waves.forEach((w, i) => {
    const tasks = (w as { tasks?: unknown } | null)?.tasks;
    if (!Array.isArray(tasks)) return;
    tasks.forEach((t, j) => {
      const id = (t as { id?: unknown } | null)?.id;
      if (typeof id !== "string") return;
      const line = lineOf(["plan", "waves", i, "tasks", j]);
      if (line !== null) index.set(id, [...(index.get(id) ?? []), line]);
    });
  });
  return index;
}

/** NUL anywhere, or more than a few control characters a text editor would not write. */
function looksBinary(text: string): boolean {
  if (text.includes("\u0000")) return true;
  // eslint-disable-next-line no-control-regex
  const controls = text.match(/[\u0001-\u0008\u000E-\u001A\u001C-\u001F\u007F]/g)?.length ?? 0;
  return controls > Math.max(8, text.length / 1000);
}
