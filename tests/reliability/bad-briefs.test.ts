/**
 * Malformed briefs at the door: `swarm submit` and `swarm plan` refuse each
 * brief of the corpus with exit 2 and a message that names the line or the
 * task, before anything reaches NATS (NATS_URL points at nothing here).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BAD_BRIEFS, type BadBrief } from "../../src/chaos/bad-briefs.ts";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

let dir: string;
let env: NodeJS.ProcessEnv;

async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", () => resolve()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-bad-briefs-"));
  env = swarmEnv(`nats://127.0.0.1:${await unusedPort()}`, dir, {
    SWARM_ROSTER: undefined,
    SWARM_PLANNER_MODEL: undefined,
  });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * `swarm plan` reads a brief exactly as `submit` does (readBriefFile): it gets
 * one brief of each kind of problem, `submit` the whole corpus.
 */
const FOR_PLAN = new Set([
  "broken YAML",
  "dependency cycle",
  "unknown agent",
  "dependency on a later wave",
  "duplicate task ids",
  "binary file",
  "larger than 1 MiB",
]);

/** Run briefs through one command, a few processes at a time (two cores). */
async function refusals(command: "submit" | "plan", briefs: readonly BadBrief[]) {
  const out: Array<{ brief: BadBrief; file: string; code: number | null; stderr: string }> = [];
  const queue = briefs.map((brief, i) => ({ brief, i }));
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const file = path.join(dir, `${command}-${job.i}.md`);
        await writeFile(file, job.brief.content);
        const r = await runSwarm([command, file], env, { timeoutMs: 60_000 });
        out.push({ brief: job.brief, file, code: r.code, stderr: r.stderr });
      }
    }),
  );
  return out;
}

describe("malformed briefs", () => {
  for (const command of ["submit", "plan"] as const) {
    it(`swarm ${command} exits 2 naming the line or task of each problem`, async () => {
      const briefs =
        command === "submit" ? BAD_BRIEFS : BAD_BRIEFS.filter((b) => FOR_PLAN.has(b.name));
      expect(briefs.length).toBeGreaterThanOrEqual(command === "submit" ? 13 : FOR_PLAN.size);
      const results = await refusals(command, briefs);
      expect(results).toHaveLength(briefs.length);
      for (const r of results) {
        const what = `${r.brief.name}: ${r.stderr}`;
        expect(r.code, what).toBe(2);
        expect(r.stderr, what).toMatch(r.brief.expect);
        // The message says which file, and never a stack trace.
        expect(r.stderr, what).toContain(r.file);
        expect(r.stderr, what).not.toMatch(/\n\s+at /);
      }
    }, 180_000);
  }
});
