/**
 * The package as a user gets it: `npm pack` (prepack builds dist/), the
 * tarball installed with `npm install` into an empty directory, and the
 * installed `swarm` run from there, outside the checkout: `--help`, `-V`,
 * and the offline demo mission end to end against its own nats-server.
 * Slow (an npm install): its own file, so the rest of the suite never waits
 * for it.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/nats-server.ts";
import { REPO_ROOT, runSwarm } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
const npm = (args: string[], cwd: string) =>
  run("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });

let dir: string;
let tarball: string;
let files: string[];
let swarm: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-package-"));
  // The demo's workspace is below it: the sandbox user must pass through.
  await chmod(dir, 0o711);
  const packed = await npm(["pack", "--json", "--pack-destination", dir], REPO_ROOT);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarball = path.join(dir, info!.filename);
  files = info!.files.map((f) => f.path);
  const app = path.join(dir, "app");
  await run("mkdir", ["-p", app]);
  await writeFile(path.join(app, "package.json"), '{ "name": "app", "private": true }\n');
  await npm(["install", tarball], app);
  swarm = path.join(app, "node_modules", ".bin", "swarm");
}, 600_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the installed package", () => {
  it("ships what runs and nothing else: the compiled build, rosters, nats.conf, schema, docs", () => {
    for (const f of [
      "bin/swarm.js",
      "dist/cli/main.js",
      "dist/workers/worker-replica.js",
      "dist/dashboard/assets/index.html",
      "dist/dashboard/assets/app.js",
      "dist/dashboard/assets/app.css",
      "rosters/default.yaml",
      "nats.conf",
      "docs/schema/event.schema.json",
      "mission-briefs/demo-library.md",
      "package.json",
    ])
      expect(files).toContain(f);
    expect(files.filter((f) => /^(src|tests|scripts|\.ci)\//.test(f) || f.endsWith(".ts"))).toEqual(
      [],
    );
    expect(files.filter((f) => /(^|\/)\.env/.test(f))).toEqual([]);
  });

  it("`swarm --help` and `swarm -V` work from an empty directory", async () => {
    const cwd = path.dirname(path.dirname(path.dirname(swarm)));
    const help = await runSwarm(["--help"], process.env, { command: swarm, cwd });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: swarm \[options\] \[command\]/);
    expect(help.stdout).toMatch(/deploy/);
    const version = await runSwarm(["-V"], process.env, { command: swarm, cwd });
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    expect(version.stdout.trim()).toBe(pkg.version);
  });

  it("runs the offline demo mission to completion", async () => {
    const app = path.dirname(path.dirname(path.dirname(swarm)));
    const brief = path.join(
      app,
      "node_modules",
      "squad-swarm",
      "mission-briefs",
      "demo-library.md",
    );
    const workspace = path.join(dir, "ws");
    const r = await runSwarm(
      ["deploy", brief, "--json", "--workspace", workspace],
      {
        ...process.env,
        // A port of its own: the launcher starts its nats-server there.
        NATS_URL: `nats://127.0.0.1:${await freePort()}`,
        SWARM_STATE_DIR: path.join(dir, "state"),
        SWARM_LOG_FORMAT: "json",
      },
      { command: swarm, cwd: app, timeoutMs: 240_000 },
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      status: string;
      tasks: { total: number; succeeded: number };
    };
    expect(summary).toMatchObject({ status: "completed", tasks: { total: 8, succeeded: 8 } });
    // The replicas ran the package's compiled build, not some checkout's sources.
    expect(r.stderr).not.toMatch(/ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING/);
    // The dashboard started from the package's own copy of its page.
    expect(r.stderr).toMatch(/dashboard\S* +http:\/\/127\.0\.0\.1:\d+\//);
  }, 300_000);
});
