/**
 * Which shell commands an agent may run: per-agent `deny`, `allow` and
 * `approval` patterns (JavaScript regular expressions, searched anywhere in
 * the command line), checked before every `run_shell` call, `run` step and
 * `verify` command. Pure: the waiting for a person's decision lives in
 * workers/approvals.ts, behind the CommandGate interface below.
 *
 * Patterns are a speed bump and an audit point, not the security boundary:
 * a shell can spell the same thing many ways (`r""m -rf`, a script file).
 * The OS sandbox (sandbox.ts) is what confines a command.
 */
import { z } from "zod";

/** One compiled pattern and why it exists (shown to the model and in approval requests). */
export interface CommandRule {
  pattern: RegExp;
  /** The pattern as written in the roster. */
  source: string;
  /** What it catches, in words. */
  label: string;
}

/**
 * The patterns a command needs a person's approval for when the roster
 * entry has no `approval` list. Written against the forms people and models
 * actually use; see the tests for what each one catches and lets through.
 */
export const DEFAULT_APPROVAL_PATTERNS: ReadonlyArray<{ source: string; label: string }> = [
  {
    // rm with both a recursive and a force flag, in any order or spelling (-rf, -fr, -r -f, --recursive --force).
    source: String.raw`(?:^|[\s;&|(/])rm(?=\s)(?=[^;&|\n]*\s-(?:[a-zA-Z]*[rR]|-recursive\b))(?=[^;&|\n]*\s-(?:[a-zA-Z]*f|-force\b))`,
    label: "rm -rf",
  },
  { source: String.raw`(?:^|[\s;&|(])sudo(?:\s|$)`, label: "sudo" },
  {
    // git push with --force, --force-with-lease, -f (alone or among short flags) or a +refspec.
    source: String.raw`\bgit\b[^;&|\n]*?\spush\b(?=[^;&|\n]*(?:\s--force\b|\s--force-with-lease\b|\s-[a-zA-Z]*f[a-zA-Z]*\b|\s\+\S))`,
    label: "git push --force",
  },
  {
    // A download piped into a shell: curl ... | sh, wget -O- ... | sudo bash, bash <(curl ...).
    source: String.raw`\b(?:curl|wget)\b[^;&\n]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b|\b(?:ba|z|da|k)?sh\s+<\(\s*(?:curl|wget)\b`,
    label: "download piped into a shell",
  },
];

/** Default wait for `swarm approve` / `swarm deny` before the command counts as denied. */
export const DEFAULT_APPROVAL_TIMEOUT_S = 300;

const Pattern = z.string().superRefine((source, ctx) => {
  try {
    new RegExp(source);
  } catch (err) {
    ctx.addIssue({
      code: "custom",
      message: `not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
});

/** The `policy` block of a roster entry (every field optional). */
export const CommandPolicySpec = z
  .object({
    /** When present and non-empty, a command must match one of these to run. */
    allow: z.array(Pattern).optional(),
    /** A command matching one of these is refused. Checked first. */
    deny: z.array(Pattern).optional(),
    /** A command matching one of these waits for `swarm approve`. Omitted: the defaults; []: none. */
    approval: z.array(Pattern).optional(),
    /** How long to wait for a decision; no decision counts as denied. Default 300. */
    approval_timeout_s: z.number().positive().max(86_400).optional(),
    /** Whether sandboxed commands may open network connections. Default false. */
    network: z.boolean().optional(),
  })
  .strict();
export type CommandPolicySpec = z.infer<typeof CommandPolicySpec>;

export interface CommandPolicy {
  allow: CommandRule[];
  deny: CommandRule[];
  approval: CommandRule[];
  approvalTimeoutS: number;
  network: boolean;
}

/** Compile a roster `policy` block (validated already; a bad pattern throws). */
export function compileCommandPolicy(spec: CommandPolicySpec = {}): CommandPolicy {
  const rules = (sources: readonly string[]) =>
    sources.map((source) => ({ pattern: new RegExp(source), source, label: `/${source}/` }));
  return {
    allow: rules(spec.allow ?? []),
    deny: rules(spec.deny ?? []),
    approval: spec.approval
      ? rules(spec.approval)
      : DEFAULT_APPROVAL_PATTERNS.map((p) => ({ ...p, pattern: new RegExp(p.source) })),
    approvalTimeoutS: spec.approval_timeout_s ?? DEFAULT_APPROVAL_TIMEOUT_S,
    network: spec.network ?? false,
  };
}

export type PolicyVerdict =
  { action: "run" } | { action: "refuse"; reason: string } | { action: "ask"; reason: string };

/** deny, then allow (when the list is not empty), then approval (pure). */
export function evaluateCommand(policy: CommandPolicy, command: string): PolicyVerdict {
  const denied = policy.deny.find((r) => r.pattern.test(command));
  if (denied) return { action: "refuse", reason: `it matches the deny pattern ${denied.label}` };
  if (policy.allow.length > 0 && !policy.allow.some((r) => r.pattern.test(command))) {
    return {
      action: "refuse",
      reason: `it matches none of the allowed patterns (${policy.allow.map((r) => r.label).join(", ")})`,
    };
  }
  const asks = policy.approval.find((r) => r.pattern.test(command));
  if (asks) return { action: "ask", reason: `it matches the approval pattern ${asks.label}` };
  return { action: "run" };
}

/** What the gate decided about one command. */
export type GateOutcome =
  | { run: true; approval?: { id: string; by: string } }
  | {
      run: false;
      /** For the model, the step and the task's error: why the command did not run. */
      reason: string;
      approval?: { id: string; decision: "denied" | "timed_out" | "aborted" };
    };

/**
 * Decides, just before a command would run, whether it may: the policy, and
 * for commands that need approval, a person's decision. Implementations:
 * `policyOnlyGate` (no approver: such commands are refused) and the worker's
 * approval gate (workers/approvals.ts).
 */
export interface CommandGate {
  admit(command: string, signal?: AbortSignal): Promise<GateOutcome>;
}

/** A gate without an approver: commands that need approval are refused, saying so. */
export function policyOnlyGate(policy: CommandPolicy): CommandGate {
  return {
    admit(command) {
      const v = evaluateCommand(policy, command);
      if (v.action === "run") return Promise.resolve({ run: true });
      if (v.action === "refuse") {
        return Promise.resolve({ run: false, reason: `command refused by policy: ${v.reason}` });
      }
      return Promise.resolve({
        run: false,
        reason: `command needs approval (${v.reason}) and no approver is connected`,
      });
    },
  };
}

/** The one-line step output of a command that was not run. */
export function notRunText(outcome: Extract<GateOutcome, { run: false }>): string {
  return `not run: ${outcome.reason}`;
}
