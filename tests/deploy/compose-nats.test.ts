/**
 * The compose stack's NATS configuration as squad-init leaves it: the shipped
 * nats.conf including the authorization block `swarm nats-config` generates
 * from the default roster. `nats-server -t` accepts it, and refuses nats.conf
 * without the generated file (the server never starts unauthenticated).
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNatsServerBinary } from "../../src/bus/nats-server-binary.ts";
import { REPO_ROOT, runSwarm } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
let dir: string;
let bin: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-compose-nats-"));
  bin = await findNatsServerBinary();
  await copyFile(path.join(REPO_ROOT, "nats.conf"), path.join(dir, "nats.conf"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const test = (conf: string) =>
  run(bin, ["-c", conf, "-t"]).then(
    (r) => ({ ok: true, out: r.stdout + r.stderr }),
    (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout}${e.stderr}` }),
  );

describe("nats.conf with the generated authorization block", () => {
  it("is refused by nats-server without the generated file", async () => {
    const r = await test(path.join(dir, "nats.conf"));
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/authorization\.conf/);
  });

  it("passes `nats-server -t` once squad-init's command wrote it, with a user per role and agent", async () => {
    const gen = await runSwarm(
      [
        "nats-config",
        "--roster",
        path.join(REPO_ROOT, "rosters/default.yaml"),
        "--state",
        path.join(dir, "state"),
        "--out",
        path.join(dir, "auth", "authorization.conf"),
        "--export",
        path.join(dir, "creds"),
      ],
      process.env,
    );
    expect(gen.code, gen.stderr).toBe(0);
    const r = await test(path.join(dir, "nats.conf"));
    expect(r.ok, r.out).toBe(true);
    const block = await readFile(path.join(dir, "auth", "authorization.conf"), "utf8");
    expect(block).toMatch(/authorization\s*\{/);
    const registry = JSON.parse(
      await readFile(path.join(dir, "state", "nats", "identities.json"), "utf8"),
    ) as { identities: Array<{ name: string; public_key: string }> };
    const names = registry.identities.map((i) => i.name).sort();
    expect(names).toEqual(
      [
        "operator",
        "orchestrator",
        "watcher",
        "worker-builder",
        "worker-devops",
        "worker-docs_writer",
        "worker-reviewer",
        "worker-tester",
      ].sort(),
    );
    for (const i of registry.identities) expect(block).toContain(i.public_key);
    // Each exported seed is where the compose services look for it.
    for (const n of names) await readFile(path.join(dir, "creds", n, "seed.nk"), "utf8");
  }, 60_000);
});
