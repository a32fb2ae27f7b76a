/** The Supervisor the launcher runs its children with, on real child processes. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ensureNats } from "../../src/cli/launcher/local-nats.ts";
import { Supervisor, type SupervisorEvent } from "../../src/cli/supervisor.ts";
import { InfrastructureError } from "../../src/errors.ts";
import { freePort, startNatsServer } from "../helpers/nats-server.ts";

const sups: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(sups.splice(0).map((s) => s.stopAll(1000)));
});

function supervise(opts: ConstructorParameters<typeof Supervisor>[0] = {}) {
  const sup = new Supervisor({ baseDelayMs: 20, ...opts });
  sups.push(sup);
  const events: SupervisorEvent[] = [];
  const waiters: Array<() => void> = [];
  sup.on("event", (e) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  });
  const until = (pred: (all: SupervisorEvent[]) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (pred(events) ? resolve() : waiters.push(check));
      check();
    });
  return { sup, events, until };
}

async function poll(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

const node = (code: string) => ({ command: process.execPath, args: ["-e", code] });
const pgid = async (pid: number) =>
  Number((await promisify(execFile)("ps", ["-o", "pgid=", "-p", String(pid)])).stdout.trim());

describe("Supervisor", () => {
  it("restarts a child killed with SIGKILL, in its own process group", async () => {
    const { sup, events, until } = supervise();
    sup.start({ name: "sleeper", ...node("setInterval(() => {}, 1000)") });
    await until((e) => e.some((x) => x.type === "started"));
    const first = events[0] as Extract<SupervisorEvent, { type: "started" }>;
    // Its own group: a Ctrl-C in the terminal reaches the parent only.
    expect(await pgid(first.pid)).toBe(first.pid);
    process.kill(first.pid, "SIGKILL");
    await until((e) => e.filter((x) => x.type === "started").length === 2);
    expect(events.map((e) => e.type)).toEqual(["started", "exited", "restarting", "started"]);
    expect(events[1]).toMatchObject({ signal: "SIGKILL", pid: first.pid });
    expect(events[3]).toMatchObject({ restarts: 1 });
    expect(sup.pids()[0]!.pid).not.toBe(first.pid);
  });

  it("does not restart a clean exit 0", async () => {
    const { sup, events, until } = supervise();
    sup.start({ name: "done", ...node("process.exit(0)") });
    await until((e) => e.some((x) => x.type === "exited"));
    await new Promise((r) => setTimeout(r, 200));
    expect(events.map((e) => e.type)).toEqual(["started", "exited"]);
  });

  it("gives up on a child that keeps crashing at start", async () => {
    const { sup, events, until } = supervise({ maxQuickRestarts: 2 });
    sup.start({ name: "broken", ...node("process.exit(2)") });
    await until((e) => e.some((x) => x.type === "gave_up"));
    expect(events.filter((e) => e.type === "started")).toHaveLength(3);
    expect(events.at(-1)).toEqual({
      type: "gave_up",
      name: "broken",
      restarts: 2,
      code: 2,
      signal: null,
    });
  });

  it("stops with SIGTERM to the child (it may drain), SIGKILL only after the grace period", async () => {
    const { sup, events } = supervise();
    const output = new PassThrough();
    let seen = "";
    output.on("data", (d: Buffer) => (seen += d.toString()));
    sup.start({
      name: "drainer",
      ...node(
        "process.on('SIGTERM', () => { console.log('draining'); setTimeout(() => process.exit(0), 100); });" +
          "console.log('ready'); setInterval(() => {}, 1000)",
      ),
      output,
    });
    await poll(() => seen.includes("ready"));
    await sup.stopAll(5000);
    expect(seen).toContain("draining");
    expect(events.at(-1)).toMatchObject({ type: "exited", code: 0, signal: null });

    const stubborn = supervise();
    const out2 = new PassThrough();
    let seen2 = "";
    out2.on("data", (d: Buffer) => (seen2 += d.toString()));
    stubborn.sup.start({
      name: "stubborn",
      ...node("process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"),
      output: out2,
    });
    await poll(() => seen2.includes("ready"));
    await stubborn.sup.stopAll(300);
    expect(stubborn.events.at(-1)).toMatchObject({ type: "exited", signal: "SIGKILL" });
    expect(stubborn.events.some((e) => e.type === "restarting")).toBe(false);
  });
});

describe("ensureNats", () => {
  it("refuses to start a server for a URL on another host", async () => {
    const err = await ensureNats({
      url: "nats://nats.invalid:4222",
      explicit: true,
      storeDir: "/nonexistent",
      stateDir: "/nonexistent/state",
      agents: ["builder"],
      insecure: false,
      credentialGiven: false,
      output: new PassThrough(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain("cannot be started from here");
  });

  it("takes a cluster's comma-separated list when any member answers, and hands on the whole list", async () => {
    const server = await startNatsServer();
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const base = {
      explicit: true,
      storeDir: "/nonexistent",
      stateDir: "/nonexistent/state",
      agents: ["builder"],
      insecure: false,
      credentialGiven: true,
      output: new PassThrough(),
    };
    try {
      const list = `${dead}, ${server.url}`;
      const endpoint = await ensureNats({ ...base, url: list });
      expect(endpoint.url).toBe(`${dead},${server.url}`);
      expect(endpoint.local).toBeNull();
      expect(endpoint.origin).toBe(`already running (${server.url} answered)`);
    } finally {
      await server.stop();
    }
    const err = await ensureNats({ ...base, url: `${dead},${server.url}` }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toMatch(/^none of the NATS servers .* answers/);
  });
});
