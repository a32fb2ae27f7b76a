/**
 * A fixed corpus of malformed mission briefs, each with the message a person
 * must get: `swarm submit` and `swarm plan` refuse each with exit 2 and a
 * message naming the line or the task (tests/reliability/bad-briefs.test.ts),
 * and the orchestrator fails a mission submitted with one on the bus with the
 * same reason (the bad-input scenario).
 */

export interface BadBrief {
  name: string;
  /** The file's bytes (a string, or raw bytes for the binary case). */
  content: string | Uint8Array;
  /** What the refusal must say (it names the line or the task). */
  expect: RegExp;
  /**
   * What a `mission_submitted` carrying it becomes: refused by the schema
   * into the DLQ, a mission_failed with the reason, or not publishable at
   * all (larger than the server's max_payload).
   */
  onBus: "dlq" | "mission_failed" | "too_large";
}

const plan = (tasks: string) => `---
title: Chaos brief
plan:
  waves:
${tasks}---

# Chaos brief

A brief that must be refused.
`;

export const BAD_BRIEFS: readonly BadBrief[] = [
  {
    name: "broken YAML",
    content: `---
title: Broken
plan:
  waves:
    - wave: 1
      tasks: [ { id: a, agent: builder
---

Body.
`,
    expect: /line \d+: /,
    onBus: "mission_failed",
  },
  {
    name: "dependency cycle",
    content: plan(`    - wave: 1
      tasks:
        - { id: a, agent: builder, title: A, run: [echo a], depends_on: [b] }
        - { id: b, agent: builder, title: B, run: [echo b], depends_on: [a] }
`),
    expect: /line 7: plan: dependency cycle: a → b → a/,
    onBus: "mission_failed",
  },
  {
    name: "unknown agent",
    content: plan(`    - wave: 1
      tasks:
        - { id: a, agent: builder, title: A, run: [echo a] }
        - { id: intruder, agent: ghost, title: B, run: [echo b] }
`),
    expect: /line 8: plan: task intruder: unknown agent "ghost"/,
    onBus: "mission_failed",
  },
  {
    name: "dependency on a later wave",
    content: plan(`    - wave: 1
      tasks:
        - { id: early, agent: builder, title: A, run: [echo a], depends_on: [late] }
    - wave: 2
      tasks:
        - { id: late, agent: builder, title: B, run: [echo b] }
`),
    expect: /line 7: plan: task early \(wave 1\): depends on late of a later wave \(wave 2\)/,
    onBus: "mission_failed",
  },
  {
    name: "duplicate task ids",
    content: plan(`    - wave: 1
      tasks:
        - { id: twin, agent: builder, title: A, run: [echo a] }
    - wave: 2
      tasks:
        - { id: twin, agent: tester, title: B, run: [echo b] }
`),
    expect: /line 10: plan: task twin: duplicate id \(used in wave 1 and wave 2\)/,
    onBus: "mission_failed",
  },
  {
    name: "a task with nothing to do",
    content: plan(`    - wave: 1
      tasks:
        - { id: idle, agent: builder, title: Idle }
`),
    expect: /line 7: plan: task idle: has neither instructions nor run steps/,
    onBus: "mission_failed",
  },
  {
    name: "front matter only",
    content: "---\ntitle: Only a title\n---\n",
    expect: /the brief has no body and no plan/,
    onBus: "mission_failed",
  },
  {
    name: "front matter never closed",
    content: "---\ntitle: Open\nplan: {}\n\n# Body\n",
    expect: /line 1: the front matter opened with --- is never closed/,
    onBus: "mission_failed",
  },
  {
    name: "unknown front matter key",
    content: "---\ntitle: Typo\nagnets: [builder]\n---\n\n# Typo\n\nBody.\n",
    expect: /line 3: unknown key "agnets"/,
    onBus: "mission_failed",
  },
  {
    name: "wrong type in the plan",
    content: plan(`    - wave: 1
      tasks:
        - { id: a, agent: builder, title: A, run: [echo a], timeout_s: soon }
`),
    expect: /task a: timeout_s: /,
    onBus: "mission_failed",
  },
  {
    name: "empty file",
    content: "",
    expect: /the brief has no body and no plan/,
    // The envelope's schema refuses an empty brief before the orchestrator reads it.
    onBus: "dlq",
  },
  {
    name: "binary file",
    content: Uint8Array.from({ length: 2048 }, (_, i) => (i * 37 + 11) % 256),
    expect: /binary file/,
    onBus: "mission_failed",
  },
  {
    name: "larger than 1 MiB",
    content: `# Huge\n\n${"All work and no play makes a dull brief. ".repeat(27_000)}\n`,
    expect: /a brief may be at most 1 MiB/,
    onBus: "too_large",
  },
];

/** The text a brief file's bytes decode to (as `readFile(path, "utf8")` gives it). */
export function briefText(b: BadBrief): string {
  return typeof b.content === "string" ? b.content : new TextDecoder().decode(b.content);
}
