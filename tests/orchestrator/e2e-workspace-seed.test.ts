import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { resolveWorkspaceSeed } from "../../src/orchestrator/workspace-seed.ts";
import { runSwarm } from "../helpers/swarm-process.ts";
import { briefText, plan, startSwarm, type Swarm } from "./e2e-harness.ts";

/** The mission's result as files: `swarm export` of its head (git workspaces). */
async function exported(swarm: Swarm, missionId: string, file: string): Promise<string> {
  const dir = path.join(swarm.workspace, `export-${missionId}`);
  const r = await runSwarm(["export", missionId, dir], swarm.env());
  expect(r.code, r.stderr).toBe(0);
  return readFile(path.join(dir, file), "utf8");
}

describe("a brief's workspace: the mission starts from its files", () => {
  let swarm: Swarm;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "squad-seed-"));
    await mkdir(path.join(dir, "project/src"), { recursive: true });
    await mkdir(path.join(dir, "project/node_modules/junk"), { recursive: true });
    await writeFile(path.join(dir, "project/src/input.txt"), "seeded\n");
    await writeFile(path.join(dir, "project/node_modules/junk/x.js"), "junk\n");
    swarm = await startSwarm();
    const orch = swarm.spawnOrchestrator();
    const worker = swarm.spawnWorker("builder");
    await swarm.ready(orch, "orchestrator");
    await swarm.ready(worker, "worker");
  });

  afterAll(async () => {
    await swarm?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("its files (without node_modules) are the mission's base; the result comes back", async () => {
    const file = path.join(dir, "brief.md");
    await writeFile(
      file,
      briefText({
        title: "work on existing files",
        workspace: "./project",
        plan: plan([
          {
            id: "use-seed",
            agent: "builder",
            run: ["tr a-z A-Z < src/input.txt > src/output.txt"],
            verify: ["grep -q SEEDED src/output.txt", "test ! -e node_modules"],
          },
        ]),
      }),
    );
    const r = await runSwarm(["submit", file, "--wait"], swarm.env());
    expect(r.code, r.stderr).toBe(0);
    const missionId = r.stdout.split("\n")[0]!;
    expect(await exported(swarm, missionId, "src/output.txt")).toBe("SEEDED\n");
  });

  it("refuses a workspace that is not a directory, naming it (exit 2)", async () => {
    const file = path.join(dir, "bad.md");
    await writeFile(
      file,
      briefText({
        title: "bad",
        workspace: "./nope",
        plan: plan([{ id: "t", agent: "builder", run: ["true"] }]),
      }),
    );
    const r = await runSwarm(["submit", file], swarm.env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/workspace: "\.\/nope" is not a directory/);
  });

  it("seeds from outside the brief's tree only with --allow-workspace naming it", async () => {
    const briefs = path.join(dir, "briefs");
    await mkdir(briefs, { recursive: true });
    const file = path.join(briefs, "outside.md");
    await writeFile(
      file,
      briefText({
        title: "work on a sibling directory",
        workspace: "../project",
        plan: plan([{ id: "t", agent: "builder", run: ["cat src/input.txt"], verify: [] }]),
      }),
    );
    const refused = await runSwarm(["submit", file], swarm.env());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`--allow-workspace ${path.join(dir, "project")}`);
    const r = await runSwarm(
      ["submit", file, "--allow-workspace", path.join(dir, "project"), "--wait"],
      swarm.env(),
    );
    expect(r.code, r.stderr).toBe(0);
    const missionId = r.stdout.split("\n")[0]!;
    expect(await exported(swarm, missionId, "src/input.txt")).toBe("seeded\n");
  });

  it("resolves relative to the brief", async () => {
    const brief = parseBrief(briefText({ title: "x", workspace: "project" }, "# do it\n"), {});
    const seed = await resolveWorkspaceSeed(brief, path.join(dir, "brief.md"));
    expect(seed).toBe(path.join(dir, "project"));
  });
});
