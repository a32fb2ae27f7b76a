/**
 * A command that fails after connecting to NATS must still end: a launcher
 * restarts a crashed child only once it has exited.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { connectBus, provisionStreams } from "../../src/bus/index.ts";
import { ExitCode } from "../../src/errors.ts";
import { startNatsServer } from "../helpers/nats-server.ts";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

describe("a command that fails with its NATS connection open", () => {
  it("exits with the error's code instead of lingering on the connection", async () => {
    const server = await startNatsServer();
    const workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-failed-command-"));
    const nc = await connectBus({ servers: server.url, name: "failed-command-test" });
    try {
      // A stream the orchestrator can neither use nor change: it fails after connecting.
      await (
        await jetstreamManager(nc)
      ).streams.add({
        name: "SQUAD_MISSIONS",
        subjects: ["squad.missions.>"],
        storage: StorageType.Memory,
      });
      // runSwarm SIGKILLs it after the timeout: a lingering process shows as a null code.
      const r = await runSwarm(["orchestrator"], swarmEnv(server.url, workspace), {
        timeoutMs: 20_000,
      });
      expect(r.stderr).toMatch(/swarm: stream SQUAD_MISSIONS exists with a conflicting config/);
      expect(r.code).toBe(ExitCode.infrastructure);
    } finally {
      await nc.close();
      await server.stop();
      await rm(workspace, { recursive: true, force: true });
    }
  }, 60_000);

  it("exits 3 with a hint, not 1 or 4, when the NATS user may not do what the command needs", async () => {
    // A user that may read the account and stream info, and nothing else (as a watcher
    // without the consumer permissions `swarm status` needs).
    const server = await startNatsServer({
      configText: [
        "authorization {",
        "  users: [",
        '    { user: "admin", password: "admin-pw" }',
        '    { user: "nobody", password: "nobody-pw", permissions: { publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.NAMES"] }, subscribe: { allow: ["_INBOX.>"] } } }',
        "  ]",
        "}",
        // The suite's readiness check connects without credentials.
        "no_auth_user: admin",
      ].join("\n"),
    });
    const workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-denied-command-"));
    const admin = await connectBus({
      servers: server.url.replace("nats://", "nats://admin:admin-pw@"),
      name: "denied-command-admin",
    });
    try {
      await provisionStreams(admin);
      const url = server.url.replace("nats://", "nats://nobody:nobody-pw@");
      const r = await runSwarm(["status", "--json"], swarmEnv(url, workspace), {
        timeoutMs: 30_000,
      });
      expect(r.code, r.stderr).toBe(ExitCode.infrastructure);
      expect(r.stderr).toMatch(/Permissions Violation/);
      expect(r.stderr).toMatch(/hint: the NATS user this command connected as may not do that/);
      expect(r.stderr).not.toMatch(/nobody-pw/);
      expect(r.stderr).not.toMatch(/defect of swarm/);
    } finally {
      await admin.close();
      await server.stop();
      await rm(workspace, { recursive: true, force: true });
    }
  }, 60_000);
});
