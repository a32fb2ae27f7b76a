/**
 * `swarm nats-config` for every shipped roster: the printed block is a valid
 * nats-server config (`nats-server -t`), has a worker user per agent, and
 * keeps the identities it generated on a second run.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { findNatsServerBinary } from "../../src/bus/nats-server-binary.ts";
import { loadRoster } from "../../src/workers/roster.ts";
import { REPO_ROOT, runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const rosters = (await readdir(path.join(REPO_ROOT, "rosters"))).filter((f) => f.endsWith(".yaml"));

describe("swarm nats-config, per shipped roster", () => {
  it.each(rosters)(
    "%s: the block passes nats-server -t, one worker user per agent",
    async (file) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "squad-natscfg-"));
      dirs.push(dir);
      const roster = path.join(REPO_ROOT, "rosters", file);
      const state = path.join(dir, "state");
      const env = swarmEnv("nats://127.0.0.1:1", dir);
      const first = await runSwarm(
        ["nats-config", "--roster", roster, "--state", state, "--json"],
        env,
      );
      expect(first.code, first.stderr).toBe(0);
      const out = JSON.parse(first.stdout) as {
        identities: Array<{ name: string; public_key: string }>;
        authorization: string;
      };
      const agents = (await loadRoster(roster)).agents.map((a) => a.name);
      expect(out.identities.map((i) => i.name).sort()).toEqual(
        ["orchestrator", "operator", "watcher", ...agents.map((a) => `worker-${a}`)].sort(),
      );
      const conf = path.join(dir, "nats.conf");
      await writeFile(path.join(dir, "authorization.conf"), out.authorization);
      await writeFile(
        conf,
        `listen: 127.0.0.1:4222\njetstream { store_dir: "${dir}/js" }\ninclude ./authorization.conf\n`,
      );
      const bin = await findNatsServerBinary();
      const t = await run(bin, ["-c", conf, "-t"]).then(
        (r) => ({ ok: true, text: r.stdout + r.stderr }),
        (e: { stdout?: string; stderr?: string }) => ({
          ok: false,
          text: `${e.stdout}${e.stderr}`,
        }),
      );
      expect(t.ok, t.text).toBe(true);
      // A second run reuses the identities (same public keys), it does not rotate them.
      const again = await runSwarm(["nats-config", "--roster", roster, "--state", state], env);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe(out.authorization);
      const seed = await readFile(path.join(state, "nats", "creds", "orchestrator.nk"), "utf8");
      expect(again.stdout).not.toContain(seed.trim());
    },
  );
});
