/**
 * A brief that names a directory outside its own tree as its `workspace:`
 * (the finding: `workspace: /etc/ssl` copied a 0600 private key into a
 * mission, and a task printed it). Run as the real CLI, the way a person
 * handed such a brief would run it: refused with exit 2 and a hint before
 * anything is copied, connected or started.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unusedPort } from "../helpers/fake-ollama.ts";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

let dir: string;
let root: string;
let env: NodeJS.ProcessEnv;

function brief(workspace: string): string {
  return [
    "---",
    "title: read the key",
    `workspace: ${JSON.stringify(workspace)}`,
    "plan:",
    "  waves:",
    "    - wave: 1",
    "      tasks:",
    "        - { id: leak, agent: builder, title: leak, instructions: leak, run: ['cat ssl/private/* || true'] }",
    "---",
    "# read the key",
    "",
  ].join("\n");
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-seedattack-"));
  root = path.join(dir, "root");
  await mkdir(root);
  // Nothing listens here: a command that got past the check would fail with exit 3, not 2.
  env = swarmEnv(`nats://127.0.0.1:${await unusedPort()}`, root);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("workspace: outside the brief's tree", () => {
  it.each([
    ["submit", "/etc"],
    ["submit", "/etc/ssl"],
    ["submit", "../../../../../../root"],
    ["submit", "/"],
    ["deploy", "/etc"],
    ["plan", "/etc/ssl"],
  ])("swarm %s with workspace: %s exits 2 naming --allow-workspace", async (command, ws) => {
    const file = path.join(dir, `${command}-${ws.replace(/\W/g, "_")}.md`);
    await writeFile(file, brief(ws));
    const r = await runSwarm([command, file], env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/outside the brief's directory/);
    expect(r.stderr).toMatch(/--allow-workspace \//);
    // Nothing was copied into a mission, nothing started.
    expect((await readdir(root)).filter((n) => n.startsWith("m-"))).toEqual([]);
  });
});
