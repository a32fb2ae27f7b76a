import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  CLAIMS_BUCKET,
  LeaseLostError,
  connectBus,
  openLeaseStore,
  type LeaseStore,
} from "../../src/bus/index.ts";
import { SchemaValidationError } from "../../src/schema/index.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
const connections: NatsConnection[] = [];
let a: LeaseStore;
let b: LeaseStore;

beforeAll(async () => {
  server = await startNatsServer();
  // Two processes, two connections, one bucket.
  for (const name of ["lease-a", "lease-b"])
    connections.push(await connectBus({ servers: server.url, name }));
  a = await openLeaseStore(connections[0]!, CLAIMS_BUCKET);
  b = await openLeaseStore(connections[1]!, CLAIMS_BUCKET);
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await server?.stop();
});

describe("lease store", () => {
  it("lets exactly one of many concurrent acquirers win", async () => {
    const contenders = Array.from({ length: 8 }, (_, i) => ({
      store: i % 2 ? a : b,
      owner: `w${i}`,
    }));
    const results = await Promise.all(
      contenders.map((c) => c.store.acquire("m1.t1.1", c.owner, 60_000)),
    );
    const winners = results.flatMap((r, i) => (r.ok ? [contenders[i]!.owner] : []));
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (!r.ok) expect(r).toMatchObject({ holder: winners[0], done: false });
    }
  });

  it("is not re-entrant: the holder asking again is told it holds the key", async () => {
    expect((await a.acquire("m1.t2.1", "w1", 60_000)).ok).toBe(true);
    expect(await a.acquire("m1.t2.1", "w1", 60_000)).toMatchObject({
      ok: false,
      holder: "w1",
      done: false,
    });
  });

  it("takes over an expired lease, and only one of the racers does", async () => {
    expect((await a.acquire("m1.t3.1", "dead-worker", 1000)).ok).toBe(true);
    expect(await b.acquire("m1.t3.1", "w2", 60_000)).toMatchObject({
      ok: false,
      holder: "dead-worker",
    });
    await sleep(1100);
    const racers = await Promise.all([
      a.acquire("m1.t3.1", "w3", 60_000),
      b.acquire("m1.t3.1", "w4", 60_000),
      a.acquire("m1.t3.1", "w5", 60_000),
    ]);
    expect(racers.filter((r) => r.ok)).toHaveLength(1);
    // The dead worker's lease is gone: it can't renew or complete.
    expect(await a.renew("m1.t3.1", "dead-worker", 60_000)).toBe(false);
    await expect(a.complete("m1.t3.1", "dead-worker")).rejects.toBeInstanceOf(LeaseLostError);
  });

  it("renews a held lease so it does not expire", async () => {
    expect((await a.acquire("m1.t4.1", "w1", 60_000)).ok).toBe(true);
    const before = (await a.inspect("m1.t4.1"))!;
    await sleep(20);
    expect(await a.renew("m1.t4.1", "w1", 60_000)).toBe(true);
    const after = (await a.inspect("m1.t4.1"))!;
    expect(after.expires_at).toBeGreaterThan(before.expires_at);
    expect(after.revision).toBeGreaterThan(before.revision);
    expect(await b.acquire("m1.t4.1", "w2", 60_000)).toMatchObject({ ok: false, holder: "w1" });
    expect(await b.renew("m1.t4.1", "w2", 60_000)).toBe(false);
  });

  it("keeps a completed key done, even after its lease time", async () => {
    expect((await a.acquire("m1.t5.1", "w1", 200)).ok).toBe(true);
    await a.complete("m1.t5.1", "w1");
    await a.complete("m1.t5.1", "w1"); // idempotent
    await sleep(300);
    expect(await b.acquire("m1.t5.1", "w2", 60_000)).toMatchObject({
      ok: false,
      holder: "w1",
      done: true,
    });
    expect(await a.renew("m1.t5.1", "w1", 60_000)).toBe(false);
    await a.release("m1.t5.1", "w1"); // a done key is not released
    expect(await b.inspect("m1.t5.1")).toMatchObject({ owner: "w1", done: true });
  });

  it("completes at the revision its acquire wrote, and falls back to reading when it changed", async () => {
    const got = await a.acquire("m1.t9.1", "w1", 60_000);
    if (!got.ok) throw new Error("expected the key");
    await a.complete("m1.t9.1", "w1", { revision: got.revision });
    expect(await a.inspect("m1.t9.1")).toMatchObject({ owner: "w1", done: true });
    // Renewed since: the stale revision conflicts, the key is read, and it is still ours.
    const renewed = await a.acquire("m1.t10.1", "w1", 60_000);
    if (!renewed.ok) throw new Error("expected the key");
    expect(await a.renew("m1.t10.1", "w1", 60_000)).toBe(true);
    await a.complete("m1.t10.1", "w1", { revision: renewed.revision });
    expect(await a.inspect("m1.t10.1")).toMatchObject({ owner: "w1", done: true });
    // Taken over after our lease lapsed: the stale revision must not mark it done for us.
    const lapsed = await a.acquire("m1.t11.1", "w1", 200);
    if (!lapsed.ok) throw new Error("expected the key");
    await sleep(300);
    expect((await b.acquire("m1.t11.1", "w2", 60_000)).ok).toBe(true);
    await expect(
      a.complete("m1.t11.1", "w1", { revision: lapsed.revision }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    expect(await a.inspect("m1.t11.1")).toMatchObject({ owner: "w2", done: false });
  });

  it("frees a released key for the next acquirer", async () => {
    expect((await a.acquire("m1.t6.1", "w1", 60_000)).ok).toBe(true);
    await b.release("m1.t6.1", "w2"); // not the holder: no effect
    expect(await b.acquire("m1.t6.1", "w2", 60_000)).toMatchObject({ ok: false, holder: "w1" });
    await a.release("m1.t6.1", "w1");
    expect(await a.inspect("m1.t6.1")).toBeNull();
    expect((await b.acquire("m1.t6.1", "w2", 60_000)).ok).toBe(true);
  });

  it("rejects a corrupt lease value with a schema error naming the key", async () => {
    const { Kvm } = await import("@nats-io/kv");
    const kv = await new Kvm(connections[0]!).open(CLAIMS_BUCKET);
    await kv.put("m1.t7.1", "{ not a lease");
    await kv.put("m1.t8.1", JSON.stringify({ owner: "x", done: "no" }));
    await expect(a.acquire("m1.t7.1", "w1", 1000)).rejects.toThrow();
    const err = await a.acquire("m1.t8.1", "w1", 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaValidationError);
    expect((err as Error).message).toMatch(/squad_claims\/m1\.t8\.1.*expires_at/);
  });
});
