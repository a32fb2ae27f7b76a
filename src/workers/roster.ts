import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { z } from "zod";
import { BadInputError } from "../errors.ts";
import { parseModelSpec } from "../llm/model-spec.ts";
import { AgentName } from "../schema/identifiers.ts";
import { CommandPolicySpec } from "../tools/command-policy.ts";
import { SandboxMode } from "../tools/sandbox.ts";
import { TaskLimitsSpec } from "../tools/task-limits.ts";
import { TOOL_NAMES } from "../tools/tool-names.ts";

/** One roster entry: an agent is data (what the planner reads, what the worker is told). */
export const RosterAgent = z
  .object({
    name: AgentName,
    /** What the planner reads to assign work. */
    description: z.string().trim().min(1, "describe what this agent does (the planner reads it)"),
    /** The worker's system prompt. */
    persona: z.string().trim().min(1, "write the agent's system prompt"),
    tools: z
      .array(z.enum(TOOL_NAMES, { error: () => `must be one of ${TOOL_NAMES.join(", ")}` }))
      .refine((t) => new Set(t).size === t.length, "lists a tool twice"),
    /** Model spec; the worker's SWARM_WORKER_MODEL when absent. */
    model: z
      .string()
      .superRefine((spec, ctx) => {
        try {
          parseModelSpec(spec);
        } catch (err) {
          ctx.addIssue({
            code: "custom",
            message: err instanceof Error ? err.message : String(err),
          });
        }
      })
      .optional(),
    /** Tasks in flight per replica. */
    concurrency: z.number().int().min(1).max(64).optional(),
    /**
     * OS sandbox of its shell commands (docs/security.md). Absent: the
     * worker's SWARM_SANDBOX, else bwrap where it works, else none with a
     * warning. `bwrap` where bubblewrap can't work: the worker refuses to start.
     */
    sandbox: SandboxMode.optional(),
    /** Which commands may run, which wait for `swarm approve`, and network access. */
    policy: CommandPolicySpec.optional(),
    /**
     * Resource limits of each of its commands, over the defaults (task-limits.ts):
     * `{ processes, memory_mb, file_mb, workspace_mb, tmp_mb, cpu_s }`.
     */
    limits: TaskLimitsSpec.optional(),
  })
  .strict();
export type RosterAgent = z.infer<typeof RosterAgent>;

export const Roster = z
  .object({ agents: z.array(RosterAgent).min(1, "a roster needs at least one agent") })
  .strict()
  .superRefine((roster, ctx) => {
    const seen = new Map<string, number>();
    roster.agents.forEach((a, i) => {
      const first = seen.get(a.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["agents", i, "name"],
          message: `duplicate agent name ${JSON.stringify(a.name)} (also agents[${first}])`,
        });
      } else {
        seen.set(a.name, i);
      }
    });
  });
export type Roster = z.infer<typeof Roster>;

/** `rosters/default.yaml` of this checkout (resolved from this file, not the cwd). */
export const DEFAULT_ROSTER_PATH = fileURLToPath(
  new URL("../../rosters/default.yaml", import.meta.url),
);

/**
 * Load a roster: `file` when given, else `SWARM_ROSTER`, else the default
 * roster. YAML or JSON (YAML is a superset). Every problem is a BadInputError
 * naming the file and the field.
 */
export async function loadRoster(
  file?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Roster> {
  const chosen = file?.trim() || env.SWARM_ROSTER?.trim() || DEFAULT_ROSTER_PATH;
  const abs = path.resolve(chosen);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadInputError(
      code === "ENOENT"
        ? `roster file ${abs} not found (set --roster FILE or SWARM_ROSTER)`
        : `cannot read roster file ${abs}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return parseRoster(text, abs);
}

/** Parse roster text (YAML or JSON); `source` names it in errors. */
export function parseRoster(text: string, source: string): Roster {
  let data: unknown;
  try {
    data = YAML.parse(text, { prettyErrors: true });
  } catch (err) {
    throw new BadInputError(
      `roster ${source} is not valid YAML/JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const r = Roster.safeParse(data);
  if (!r.success) {
    const where = (p: PropertyKey[]) => describePath(data, p);
    const issues = r.error.issues.map((i) => `${where(i.path)}: ${i.message}`).join("; ");
    throw new BadInputError(`invalid roster ${source}: ${issues}`);
  }
  return r.data;
}

/** The entry named `name`, or a BadInputError listing the roster's names. */
export function findAgent(roster: Roster, name: string): RosterAgent {
  const agent = roster.agents.find((a) => a.name === name);
  if (!agent) {
    throw new BadInputError(
      `agent ${JSON.stringify(name)} is not in the roster (${roster.agents.map((a) => a.name).join(", ")})`,
    );
  }
  return agent;
}

/** `agents[2] (builder).tools[0]`: the index and, when known, the agent's name. */
function describePath(data: unknown, p: PropertyKey[]): string {
  if (p.length === 0) return "(root)";
  let out = "";
  for (const [i, key] of p.entries()) {
    if (typeof key === "number") out += `[${key}]`;
    else out += `${i === 0 ? "" : "."}${String(key)}`;
    if (i === 1 && p[0] === "agents" && typeof key === "number") {
      const name = agentNameAt(data, key);
      if (name) out += ` (${name})`;
    }
  }
  return out;
}

function agentNameAt(data: unknown, index: number): string | undefined {
  const agents = (data as { agents?: unknown } | null)?.agents;
  if (!Array.isArray(agents)) return undefined;
  const name = (agents[index] as { name?: unknown } | undefined)?.name;
  return typeof name === "string" ? name : undefined;
}
