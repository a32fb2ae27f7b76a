/**
 * Every shipped roster's generated authorization block, on a real
 * nats-server started with it: `nats-server -t` style start-up succeeds, and
 * each agent of the roster, as a real `swarm worker` process holding only its
 * own seed, does its work (pulls its task, claims it, runs it, reports it)
 * with no permission error (issue 12: a NATS user for every agent of the
 * shipped rosters, generated rather than kept by hand).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Kvm } from "@nats-io/kv";
import { nkeyAuthenticator } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLAIMS_BUCKET,
  MISSIONS_BUCKET,
  connectBus,
  createPublisher,
  ensureWorkerConsumer,
  openLeaseStore,
  provisionStreams,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { createEventSigner } from "../../src/bus/event-signing.ts";
import { IdentityRegistry, identityForSeed } from "../../src/bus/identity-registry.ts";
import { ensureIdentities, readSeedFile } from "../../src/bus/identity-store.ts";
import { renderAuthorizationBlock } from "../../src/bus/nats-auth-block.ts";
import { natsStatePaths, seedFilePath } from "../../src/bus/state-dir.ts";
import { loadRoster } from "../../src/workers/roster.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { REPO_ROOT, killAllSwarms, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { EventLog, makeTask, newMission, taskAssigned } from "../workers/worker-harness.ts";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await killAllSwarms();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe.each(["default", "platform", "startup"])(
  "the %s roster's generated NATS users",
  (name) => {
    it("let every agent, with only its own seed, pull, claim, run and report its task", async () => {
      const rosterPath = path.join(REPO_ROOT, "rosters", `${name}.yaml`);
      const agents = (await loadRoster(rosterPath)).agents.map((a) => a.name);
      const state = await mkdtemp(path.join(os.tmpdir(), `squad-roster-${name}-state-`));
      const workspace = await mkdtemp(path.join(os.tmpdir(), `squad-roster-${name}-ws-`));
      await chmod(workspace, 0o711); // the sandbox user passes through to the missions
      cleanups.push(() => rm(state, { recursive: true, force: true }));
      cleanups.push(() => rm(workspace, { recursive: true, force: true }));
      const registry = await ensureIdentities(state, agents);
      const seed = (who: string) => seedFilePath(state, who);
      const orchSeed = (await readSeedFile(seed("orchestrator"))).seed;
      const server: NatsServerHandle = await startNatsServer({
        configText: renderAuthorizationBlock(registry),
        readyAuth: { authenticator: nkeyAuthenticator(orchSeed) },
      });
      cleanups.push(() => server.stop());
      const orch: NatsConnection = await connectBus({
        servers: server.url,
        name: "test-orchestrator",
        auth: { method: "nkey", seedFile: seed("orchestrator") },
      });
      cleanups.push(() => orch.close());
      await provisionStreams(orch);
      for (const a of agents) await ensureWorkerConsumer(orch, a);
      await openLeaseStore(orch, CLAIMS_BUCKET);
      await openLeaseStore(orch, MISSIONS_BUCKET);
      await new Kvm(orch).create("squad_identities", { history: 1 });
      const events = new EventLog(orch);
      await events.ready;
      cleanups.push(() => events.stop());
      const signer = createEventSigner(identityForSeed(orchSeed, new IdentityRegistry(registry)));

      const workers = agents.map((agent) =>
        spawnSwarm(
          ["worker", "--agent", agent, "--roster", rosterPath],
          swarmEnv(server.url, workspace, {
            NATS_NKEY: seed(`worker-${agent}`),
            SWARM_IDENTITIES: natsStatePaths(state).registry,
            SWARM_LOG_LEVEL: "warn",
          }),
        ),
      );
      const mission = newMission(`roster-${name}`);
      const publisher = createPublisher(orch, { signer });
      for (const agent of agents) {
        await publisher.publish(
          taskAssigned(
            mission,
            makeTask({ id: `t-${agent}`, agent, run: [`echo ${agent} > ${agent}.txt`] }),
          ),
        );
      }
      for (const [i, agent] of agents.entries()) {
        const done = await Promise.race([
          events.result(mission, `t-${agent}`, 120_000),
          workers[i]!.exited.then(({ code }) => {
            throw new Error(`${agent} exited (${code}):\n${workers[i]!.stderr().slice(-3000)}`);
          }),
        ]);
        expect(done.type, `${agent}: ${JSON.stringify(done.payload.result.error ?? "")}`).toBe(
          "task_completed",
        );
        expect(done.source.startsWith(`${agent}/`)).toBe(true);
      }
      for (const w of workers) {
        w.kill("SIGTERM");
        expect((await w.exited).code).toBe(0);
        expect(w.stderr()).not.toMatch(/Permissions Violation/i);
      }
    }, 240_000);
  },
);
