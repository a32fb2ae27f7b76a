/**
 * Benchmark 6 (an idle replica's memory, docs/benchmarks.md) depends on what a
 * replica holds before it has work. These pin it down, so that a top-level
 * import of a heavy module on the worker's path fails here instead of only
 * showing as a bigger number in the next benchmark run.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { getHeapSpaceStatistics } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { releaseStartupMemory } from "../../src/cli/commands/worker.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { CLI_ENTRY, killAllSwarms, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

let server: NatsServerHandle;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-mem-idle-"));
  // The workspace is below it: the sandbox user must pass through.
  await chmod(dir, 0o711);
});

afterAll(async () => {
  killAllSwarms();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A module hook that appends the URL of every module the process loads to `out`, as it loads it. */
const LOAD_RECORDER = (out: string) => `
import { registerHooks } from "node:module";
import { appendFileSync } from "node:fs";
registerHooks({
  load(url, context, next) {
    appendFileSync(${JSON.stringify(out)}, url + "\\n");
    return next(url, context);
  },
});
`;

describe("an idle worker replica", () => {
  it("has loaded neither execa, LangChain nor the bus modules only the CLI uses", async () => {
    const hook = path.join(dir, "record-loads.mjs");
    const list = path.join(dir, "loaded.txt");
    await writeFile(hook, LOAD_RECORDER(list));
    const worker = spawnSwarm(
      ["--import", hook, CLI_ENTRY, "worker", "--agent", "builder"],
      swarmEnv(server.url, path.join(dir, "workspace")),
      { command: process.execPath },
    );
    await worker.waitFor(/worker replica online/, 30_000);
    // What it holds while it waits for work (stopping may load more, and that is fine).
    const loaded = (await readFile(list, "utf8")).split("\n");
    worker.kill("SIGKILL");
    await worker.exited;
    // The recorder saw the worker's path (and the sandbox probe ran: bwrap is on this machine).
    expect(loaded.some((u) => u.endsWith("/src/workers/worker-replica.ts"))).toBe(true);
    expect(loaded.some((u) => u.endsWith("/src/tools/sandbox.ts"))).toBe(true);
    expect(loaded.filter((u) => /\/node_modules\/(execa|langchain|@langchain)\//.test(u))).toEqual(
      [],
    );
    expect(
      loaded.filter((u) => /\/src\/bus\/(index|event-feed|swarm-status)\.ts$/.test(u)),
    ).toEqual([]);
  });

  it("gives back the young generation start-up grew, and leaves no gc() behind", () => {
    const newSpace = () =>
      getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_size;
    // Short-lived objects in bulk, as loading modules makes: the young generation grows.
    let keep: Array<{ i: number; s: string }> = [];
    for (let i = 0; i < 400_000; i++) {
      keep.push({ i, s: `item ${i}` });
      if (keep.length > 100_000) keep = [];
    }
    const before = newSpace();
    releaseStartupMemory();
    expect(newSpace()).toBeLessThan(before);
    expect(runInNewContext("typeof gc")).toBe("undefined");
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
