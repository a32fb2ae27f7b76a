/**
 * `swarm dashboard`'s bad input: a non-loopback address without a chosen
 * token, a token too short, a bad port: exit 2 and a message that says
 * what to do; nothing listens.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

let workspace: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-dashboard-cli-"));
  env = swarmEnv("nats://127.0.0.1:1", workspace);
  delete env.SWARM_DASHBOARD_TOKEN;
});
afterAll(async () => {
  await rm(workspace, { recursive: true, force: true });
});

describe("swarm dashboard: bad input", () => {
  it("refuses a non-loopback host without SWARM_DASHBOARD_TOKEN (exit 2)", async () => {
    const r = await runSwarm(["dashboard", "--host", "0.0.0.0", "--port", "0"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /refusing to listen on 0\.0\.0\.0 without a token.*SWARM_DASHBOARD_TOKEN/,
    );
    expect(r.stdout).toBe("");
  });

  it("refuses a short token and a bad port (exit 2)", async () => {
    const short = await runSwarm(["dashboard", "--host", "0.0.0.0"], {
      ...env,
      SWARM_DASHBOARD_TOKEN: "abc",
    });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/too short/);
    const port = await runSwarm(["dashboard", "--port", "http"], env);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port "http"/);
  });
});
