/**
 * The permission blocks of the shipped nats.conf, on a real nats-server: the
 * test reads nats.conf and replaces only `listen`, `http` and `store_dir`
 * (and adds `no_auth_user: watcher`, so the test helper's readiness probe,
 * which connects without credentials, gets the read-only user). Passwords
 * come from the environment, as in production.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLAIMS_BUCKET,
  connectBus,
  createPublisher,
  ensureWorkerConsumer,
  openLeaseStore,
  provisionStreams,
  replayEvents,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { InfrastructureError } from "../../src/errors.ts";
import { makeEvent, type SquadEvent } from "../../src/schema/index.ts";
import type { RosterAgent } from "../../src/workers/roster.ts";
import { isPermissionError } from "../../src/workers/replica-bus.ts";
import { startWorkerReplica, type WorkerReplica } from "../../src/workers/worker-replica.ts";
import { freePort, startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, REPO_ROOT, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";
import { EventLog, makeTask, newMission, taskAssigned } from "../workers/worker-harness.ts";

// nats-server parses a $VAR's value as a config token: a value starting with
// a digit ("1e3f...") is a parse error, so passwords start with a letter.
const password = () => `p${randomBytes(12).toString("hex")}`;
const PASS = {
  SQUAD_ORCHESTRATOR_PASS: password(),
  SQUAD_WORKER_BUILDER_PASS: password(),
  SQUAD_WORKER_TESTER_PASS: password(),
  SQUAD_WATCHER_PASS: password(),
};

let server: NatsServerHandle;
let storeDir: string;
let workspace: string;
let orch: NatsConnection;
let builder: NatsConnection;
let watcher: NatsConnection;
let events: EventLog;
let jsm: JetStreamManager;
const replicas: WorkerReplica[] = [];
const saved: Record<string, string | undefined> = {};

/** The shipped file with only the listen, http and store_dir values replaced. */
async function testConfig(port: number, httpPort: number, storeDir: string): Promise<string> {
  const shipped = await readFile(path.join(REPO_ROOT, "nats.conf"), "utf8");
  const replace = (text: string, re: RegExp, to: string) => {
    expect(text, `nats.conf has no ${re}`).toMatch(re);
    return text.replace(re, to);
  };
  let conf = replace(shipped, /^listen: .*$/m, `listen: 127.0.0.1:${port}`);
  conf = replace(conf, /^http: .*$/m, `http: 127.0.0.1:${httpPort}`);
  conf = replace(conf, /^(\s*)store_dir: .*$/m, `$1store_dir: ${JSON.stringify(storeDir)}`);
  return `${conf}\nno_auth_user: watcher\n`;
}

function connectAs(user: string, pass: string, inboxPrefix?: string): Promise<NatsConnection> {
  return connectBus({
    servers: server.url,
    name: `test-${user}`,
    user,
    pass,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
}

const BUILDER: RosterAgent = {
  name: "builder",
  description: "builds",
  persona: "You build.",
  tools: ["run_shell"],
};

async function expectRefused(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, "the server accepted it").not.toBeNull();
  expect(isPermissionError(err), `not a permissions violation: ${String(err)}`).toBe(true);
}

async function streamMessages(stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

beforeAll(async () => {
  for (const [k, v] of Object.entries(PASS)) {
    saved[k] = process.env[k];
    process.env[k] = v; // nats-server reads $SQUAD_*_PASS from its environment
  }
  const port = await freePort();
  storeDir = await mkdtemp(path.join(os.tmpdir(), "squad-perm-store-"));
  server = await startNatsServer({
    port,
    storeDir,
    // JetStream comes from the file's own jetstream block (the helper's -js -sd would clash with it).
    jetstream: false,
    configText: await testConfig(port, await freePort(), storeDir),
  });
  workspace = await mkdtemp(path.join(os.tmpdir(), "squad-perm-ws-"));
  // The orchestrator provisions everything, the claims bucket included.
  orch = await connectAs("orchestrator", PASS.SQUAD_ORCHESTRATOR_PASS);
  // A max age the workers don't know: their provisioning would "fix" it, and is refused.
  await provisionStreams(orch, { eventsMaxAgeS: 3600 });
  await openLeaseStore(orch, CLAIMS_BUCKET);
  jsm = await jetstreamManager(orch);
  events = new EventLog(orch);
  await events.ready;
  builder = await connectAs("builder", PASS.SQUAD_WORKER_BUILDER_PASS, "_INBOX_builder");
  watcher = await connectAs("watcher", PASS.SQUAD_WATCHER_PASS);
});

afterAll(async () => {
  await killAllSwarms();
  await Promise.all(replicas.map((r) => r.stop("test over")));
  await events?.stop();
  for (const nc of [builder, watcher, orch]) await nc?.close();
  await server?.stop();
  for (const dir of [workspace, storeDir]) if (dir) await rm(dir, { recursive: true, force: true });
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("nats.conf permissions (real server, shipped permission blocks)", () => {
  it("a `swarm worker --agent builder` process under the builder user runs a builder task end to end", async () => {
    const worker = spawnSwarm(
      ["worker", "--agent", "builder"],
      swarmEnv(server.url, workspace, {
        NATS_USER: "builder",
        NATS_PASS: PASS.SQUAD_WORKER_BUILDER_PASS,
        SWARM_NATS_INBOX_PREFIX: "_INBOX_builder",
        SWARM_HEARTBEAT_MS: "200",
      }),
    );
    const online = await Promise.race([
      events.waitFor("agent_online", (e) => e.payload.pid === worker.pid, 30_000),
      worker.exited.then(({ code }) => {
        throw new Error(`worker exited (${code}):\n${worker.stderr().slice(-3000)}`);
      }),
    ]);
    const mission = newMission("perm");
    await createPublisher(orch).publish(
      taskAssigned(
        mission,
        makeTask({
          id: "t1",
          agent: "builder",
          run: ["echo built > out.txt"],
          verify: ["test -s out.txt"],
        }),
      ),
    );
    const done = await events.result(mission, "t1");
    expect(done.type).toBe("task_completed");
    expect(done.source).toBe(online.source);
    expect(events.forTask("task_started", mission, "t1")).toHaveLength(1);
    // Its status goes out on its own subject.
    await events.waitFor("agent_heartbeat", (e) => e.source === online.source);
    worker.kill("SIGTERM");
    expect((await worker.exited).code).toBe(0);
    expect(worker.stderr()).not.toContain(PASS.SQUAD_WORKER_BUILDER_PASS);
    // It was refused the stream update it tried, and went on with the streams as they are.
    expect(worker.stderr()).toContain("streams exist; this NATS user may not change them");
    expect((await jsm.streams.info("SQUAD_EVENTS")).config.max_age).toBe(3600 * 1e9);
  });

  it("the builder user can't pull tester's tasks nor point its durable at them", async () => {
    await ensureWorkerConsumer(orch, "tester");
    const mission = newMission("steal");
    await createPublisher(orch).publish(
      taskAssigned(mission, makeTask({ id: "t1", agent: "tester", run: ["true"] })),
    );
    const js = jetstream(builder);
    await expectRefused(js.consumers.get("SQUAD_TASKS", "worker-tester"));
    await expectRefused(
      builder.request(
        "$JS.API.CONSUMER.MSG.NEXT.SQUAD_TASKS.worker-tester",
        JSON.stringify({ batch: 1, expires: 1e9 }),
        { timeout: 3000 },
      ),
    );
    // Its own durable's name with another agent's filter: refused by the subject alone.
    const bjsm = await jetstreamManager(builder);
    await expectRefused(
      bjsm.consumers.add("SQUAD_TASKS", {
        durable_name: "worker-builder",
        filter_subject: "squad.tasks.tester",
        ack_policy: "explicit" as never,
      }),
    );
    const info = await jsm.consumers.info("SQUAD_TASKS", "worker-tester");
    expect(info.num_pending).toBe(1);
  });

  it("the builder user can't publish a task_assigned", async () => {
    const before = await streamMessages("SQUAD_TASKS");
    const forged = taskAssigned(
      newMission("forged"),
      makeTask({ id: "t1", agent: "tester", run: ["true"] }),
    );
    await expectRefused(createPublisher(builder, { retry: { attempts: 1 } }).publish(forged));
    await expectRefused(jetstream(builder).publish("squad.tasks.builder", JSON.stringify(forged)));
    expect(await streamMessages("SQUAD_TASKS")).toBe(before);
  });

  it("the builder user can't subscribe to squad.tasks.> (nor to the whole bus)", async () => {
    for (const subject of ["squad.tasks.>", "squad.>", "squad.tasks.tester"]) {
      const sub = builder.subscribe(subject);
      // The server answers the SUB (with -ERR) before the PONG of this flush.
      await builder.flush();
      expect(sub.isClosed(), `${subject} was accepted`).toBe(true);
      expect(await sub.closed).toBeInstanceOf(errors.PermissionViolationError);
    }
  });

  it("the watcher can read the bus and replay SQUAD_EVENTS, but can't publish anything on squad.>", async () => {
    const seen: string[] = [];
    const sub = watcher.subscribe("squad.>", {
      callback: (_e, m) => {
        seen.push(m.subject);
      },
    });
    await watcher.flush();
    const mission = newMission("watched");
    await createPublisher(orch).publish(
      makeEvent(
        "mission_cancelled",
        { mission_id: mission, source: "orchestrator" },
        { reason: "x" },
      ),
    );
    await expect.poll(() => seen).toContain("squad.coordination");
    sub.unsubscribe();
    const replayed: SquadEvent[] = [];
    for await (const { event } of replayEvents(watcher, { missionId: mission }))
      replayed.push(event);
    expect(replayed.map((e) => e.type)).toEqual(["mission_cancelled"]);

    const counts = async () =>
      Promise.all(
        ["SQUAD_TASKS", "SQUAD_EVENTS", "SQUAD_STATUS", "SQUAD_MISSIONS", "SQUAD_DLQ"].map(
          streamMessages,
        ),
      );
    const before = await counts();
    const js = jetstream(watcher);
    for (const subject of [
      "squad.coordination",
      "squad.tasks.builder",
      "squad.missions.submit",
      "squad.status.builder.x1",
      "squad.dlq.builder",
      "squad.anything.else",
    ]) {
      await expectRefused(js.publish(subject, "{}"));
    }
    // Nor pull from the work queue or touch the claims.
    await expectRefused(
      watcher.request(
        "$JS.API.CONSUMER.MSG.NEXT.SQUAD_TASKS.worker-builder",
        JSON.stringify({ batch: 1, expires: 1e9 }),
        { timeout: 3000 },
      ),
    );
    await expectRefused(watcher.request("$KV.squad_claims.x", "{}", { timeout: 3000 }));
    expect(await counts()).toEqual(before);
  });

  it("a worker user finds no claims bucket it could create: a clear error, not a hang", async () => {
    await Promise.all(replicas.splice(0).map((r) => r.stop("test over")));
    await jsm.streams.delete(`KV_${CLAIMS_BUCKET}`);
    const err = await startWorkerReplica({
      nc: builder,
      agent: BUILDER,
      instance: "perm2",
      concurrency: 1,
      workspaceRoot: workspace,
      defaultModel: "ollama:unused",
      version: "test",
      log: (await import("../../src/log.ts")).silentLogger,
      env: { PATH: process.env.PATH },
    }).then(
      (r) => {
        replicas.push(r);
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as InfrastructureError).message).toMatch(/squad_claims does not exist/);
    expect((err as InfrastructureError).hint).toMatch(/orchestrator/);
  });
});
