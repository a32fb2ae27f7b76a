/**
 * A command that fails after connecting to NATS must still end: a launcher
 * restarts a crashed child only once it has exited.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { connectBus } from "../../src/bus/index.ts";
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
});
