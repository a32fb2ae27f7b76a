/**
 * `deploy-swarm` starts the dashboard by default and prints its URL (with
 * the token); `--no-dashboard` does not. The dashboard serves the deployed
 * mission while the deploy runs.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { REPO_ROOT, runSwarm, spawnSwarm } from "../helpers/swarm-process.ts";

const bus = useSwarmBus("dashboard-deploy");
const DEMO = path.join(REPO_ROOT, "mission-briefs/demo-library.md");
const URL_LINE = /dashboard\W+(http:\/\/127\.0\.0\.1:\d+\/)#token=(\S+)/;

describe("deploy-swarm and the dashboard", () => {
  it("starts it by default, prints its URL with the token, and it answers while the deploy runs", async () => {
    const deploy = spawnSwarm(["deploy", DEMO, "--replicas", "1", "--json"], bus.env);
    await deploy.waitFor(URL_LINE, 60_000);
    const [, url, token] = URL_LINE.exec(deploy.stderr() + deploy.stdout())!;
    expect(token!.length).toBeGreaterThanOrEqual(16);
    const health = await fetch(new URL("api/health", url));
    expect(health.status).toBe(200);
    const { code } = await deploy.exited;
    expect(code).toBe(0);
    const summary = JSON.parse(deploy.stdout().trim().split("\n").pop()!) as {
      mission_id: string;
    };
    expect(deploy.stderr()).toContain(summary.mission_id);
  }, 180_000);

  it("--no-dashboard starts none", async () => {
    const r = await runSwarm(
      ["deploy", DEMO, "--replicas", "1", "--json", "--no-dashboard"],
      bus.env,
    );
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toMatch(URL_LINE);
  }, 180_000);
});
