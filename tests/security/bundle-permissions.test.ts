/**
 * The generated NATS permissions and the `squad_bundles` object store, on a
 * real nats-server with the generated authorization block: a worker and the
 * operator put and get git bundles, the watcher only gets them, and only the
 * orchestrator deletes them or touches the bucket's stream. Each role
 * connects with only its own seed and inbox prefix, as its process would.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { nkeyAuthenticator } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLE_STREAM } from "../../src/bus/bundle-bucket.ts";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { ensureIdentities, identityName, readSeedFile } from "../../src/bus/identity-store.ts";
import type { Role } from "../../src/bus/identity.ts";
import { openJetStreamManager } from "../../src/bus/jetstream-manager.ts";
import { renderAuthorizationBlock } from "../../src/bus/nats-auth-block.ts";
import { inboxPrefixFor } from "../../src/bus/nats-permissions.ts";
import { seedFilePath } from "../../src/bus/state-dir.ts";
import { provisionStreams } from "../../src/bus/streams.ts";
import {
  bundleLimitsFromEnv,
  openBundleStore,
  type BundleStore,
} from "../../src/workspace/bundle-store.ts";
import { MissionRepo } from "../../src/workspace/mission-repo.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { commitFiles } from "../workspace/repo-fixtures.ts";

let state: string;
let caches: string;
let server: NatsServerHandle;
const connections: NatsConnection[] = [];
const stores = {} as Record<"orchestrator" | "worker" | "operator" | "watcher", BundleStore>;
const conns = {} as Record<keyof typeof stores, NatsConnection>;
const limits = bundleLimitsFromEnv({});

async function connectAs(role: Role, agent?: string): Promise<NatsConnection> {
  const prefix = inboxPrefixFor({ role, ...(agent ? { agent } : {}) });
  const nc = await connectBus({
    servers: server.url,
    name: `bundles-${role}`,
    auth: { method: "nkey", seedFile: seedFilePath(state, identityName(role, agent)) },
    ...(prefix ? { inboxPrefix: prefix } : {}),
  });
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  state = await mkdtemp(path.join(os.tmpdir(), "squad-bundle-perms-"));
  caches = path.join(state, "caches");
  const registry = await ensureIdentities(state, ["coder"]);
  const orchSeed = (await readSeedFile(seedFilePath(state, "orchestrator"))).seed;
  server = await startNatsServer({
    configText: renderAuthorizationBlock(registry),
    readyAuth: { authenticator: nkeyAuthenticator(orchSeed) },
  });
  conns.orchestrator = await connectAs("orchestrator");
  // Where the streams are made, the bucket is made.
  await provisionStreams(conns.orchestrator);
  stores.orchestrator = await openBundleStore(conns.orchestrator, limits, { provision: false });
  conns.worker = await connectAs("worker", "coder");
  conns.operator = await connectAs("operator");
  conns.watcher = await connectAs("watcher");
  for (const role of ["worker", "operator", "watcher"] as const) {
    stores[role] = await openBundleStore(conns[role], limits, { provision: false });
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await server?.stop();
  if (state) await rm(state, { recursive: true, force: true });
});

/** A repository cache of `role`'s own (each process has one). */
const repoOf = (role: keyof typeof stores, mission: string) =>
  MissionRepo.open(path.join(caches, role), mission, stores[role]);

describe("git bundles under the generated permissions", () => {
  it("operator uploads a base, a worker fetches it and publishes its commit, the orchestrator and watcher fetch that", async () => {
    const mission = "perm-flow";
    const submitter = await repoOf("operator", mission);
    const base = await commitFiles(submitter, null, { "README.md": "base\n" });
    await submitter.publish(base, []);

    const worker = await repoOf("worker", mission);
    await worker.ensure(base);
    // Big enough (many chunks) for the server to ask for flow control on a get.
    const blob = randomBytes(6 * 1024 * 1024).toString("base64");
    const commit = await commitFiles(worker, base, { "a.txt": "work\n", "blob.b64": blob });
    await worker.publish(commit, [base]);
    expect(await stores.worker.has(mission, commit)).toBe(true);

    for (const role of ["orchestrator", "watcher"] as const) {
      const repo = await repoOf(role, mission);
      await repo.ensure(commit);
      expect(await repo.git(["show", `${commit}:a.txt`])).toBe("work");
    }
  });

  it("the watcher may not upload", async () => {
    await expect(
      stores.watcher.put("perm-watch", "e".repeat(40), new Uint8Array([1])),
    ).rejects.toThrow(/permission/i);
  });

  it("no role but the orchestrator may purge or remove the bucket's stream; the watcher deletes nothing", async () => {
    const mission = "perm-delete";
    const repo = await repoOf("operator", mission);
    const c = await commitFiles(repo, null, { "x.txt": "x\n" });
    await repo.publish(c, []);
    for (const role of ["worker", "operator", "watcher"] as const) {
      const jsm = await openJetStreamManager(conns[role], { check: false });
      await expect(jsm.streams.purge(BUNDLE_STREAM), role).rejects.toThrow(/permission|timeout/i);
      await expect(jsm.streams.delete(BUNDLE_STREAM), role).rejects.toThrow(/permission|timeout/i);
    }
    await stores.watcher.removeMission(mission).catch((e: unknown) => {
      expect(String(e)).toMatch(/permission/i);
    });
    expect(await stores.orchestrator.has(mission, c)).toBe(true);
    expect(await stores.orchestrator.removeMission(mission)).toBe(1);
    expect(await stores.watcher.has(mission, c)).toBe(false);
    // A writer may mark a bundle deleted (it writes metadata); its publisher just uploads it again.
    await repo.publish(c, []);
    expect(await stores.watcher.has(mission, c)).toBe(true);
  });
});
