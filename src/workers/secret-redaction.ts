/**
 * The worker's secrets (API keys, NATS credentials) never reach a shell
 * command: its environment is an allow-list (tools/shell.ts). But a command
 * can still read them elsewhere, e.g. `cat /proc/$PPID/environ` (the
 * worker's own environment, readable by the same user), and its output goes
 * into `task_progress` and result events that everyone watching the bus
 * sees. So every string the worker publishes about a task is scrubbed of the
 * secret values it knows.
 */
import type { Publisher } from "../bus/publisher.ts";

/** Variable names that hold secrets: `OPENAI_API_KEY`, `NATS_PASS`, `GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`... */
const SECRET_NAME = /(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASS|PASSWORD|PASSWD|CREDENTIALS?|AUTH)(_|$)/i;
/** Shorter values are not treated as secrets (they would redact ordinary words). */
const MIN_SECRET_LENGTH = 6;
export const REDACTED = "[redacted]";

/**
 * The secret values of an environment: values of variables named like
 * secrets, and the password of any URL with credentials (`nats://u:p@host`).
 * Longest first, so a secret containing another is replaced whole.
 */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const found = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    if (SECRET_NAME.test(name) && value.trim().length >= MIN_SECRET_LENGTH) found.add(value.trim());
    for (const m of value.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:([^\s/@]+)@/gi)) {
      const pass = m[1];
      if (pass && pass.length >= MIN_SECRET_LENGTH) {
        found.add(pass);
        found.add(safeDecode(pass));
      }
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * `value` with every occurrence of a secret in any string replaced (pure):
 * a copy of what changed, and `value` itself when nothing did (so an event
 * already validated keeps its identity and is not validated again).
 */
export function redactSecrets<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return redactText(v, secrets);
    if (Array.isArray(v)) {
      const out = v.map(walk);
      return out.some((x, i) => x !== v[i]) ? out : v;
    }
    if (v !== null && typeof v === "object") {
      const entries = Object.entries(v);
      const out = entries.map(([k, x]) => [k, walk(x)] as const);
      return out.some(([, x], i) => x !== entries[i]![1]) ? Object.fromEntries(out) : v;
    }
    return v;
  };
  return walk(value) as T;
}

export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A publish that scrubs each event of these secrets first. */
export function redactingPublish(
  publisher: Publisher,
  secrets: readonly string[],
): Publisher["publish"] {
  return (event, opts) => publisher.publish(redactSecrets(event, secrets), opts);
}
