import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type NatsConnection } from "../../src/bus/connect.ts";
import { openJetStreamManager } from "../../src/bus/jetstream-manager.ts";
import { BUNDLE_STREAM, provisionBundleBucket } from "../../src/bus/bundle-bucket.ts";
import { silentLogger } from "../../src/log.ts";
import {
  BUNDLE_BUCKET,
  BundleTooLargeError,
  bundleLimitsFromEnv,
  bundleObjectName,
  openBundleStore,
} from "../../src/workspace/bundle-store.ts";
import { InfrastructureError } from "../../src/errors.ts";
import { provisionStreams } from "../../src/bus/streams.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let server: NatsServerHandle;
let nc: NatsConnection;
const C = "c".repeat(40);
const D = "d".repeat(40);

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectBus({ servers: server.url, name: "bundle-store-test" });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("bundleLimitsFromEnv", () => {
  it("defaults: 1 GiB bucket, 7 days, 64 MiB a bundle, replicas like the streams", () => {
    expect(bundleLimitsFromEnv({})).toEqual({
      maxBytes: 1024 ** 3,
      maxAgeS: 7 * 24 * 3600,
      bundleLimitBytes: 64 * 1024 ** 2,
      replicas: 1,
      timeoutMs: 10_000,
    });
    expect(
      bundleLimitsFromEnv({
        SWARM_BUNDLE_MAX_BYTES: "1000",
        SWARM_BUNDLE_MAX_AGE_S: "60",
        SWARM_BUNDLE_LIMIT_BYTES: "100",
        SWARM_STREAM_REPLICAS: "3",
        SWARM_BUNDLE_TIMEOUT_MS: "2500",
      }),
    ).toEqual({ maxBytes: 1000, maxAgeS: 60, bundleLimitBytes: 100, replicas: 3, timeoutMs: 2500 });
  });
  it("refuses nonsense with the variable's name", () => {
    expect(() => bundleLimitsFromEnv({ SWARM_BUNDLE_MAX_BYTES: "lots" })).toThrow(
      /SWARM_BUNDLE_MAX_BYTES/,
    );
    expect(() => bundleLimitsFromEnv({ SWARM_BUNDLE_LIMIT_BYTES: "0" })).toThrow(
      /SWARM_BUNDLE_LIMIT_BYTES/,
    );
    expect(() =>
      bundleLimitsFromEnv({ SWARM_BUNDLE_MAX_BYTES: "10", SWARM_BUNDLE_LIMIT_BYTES: "100" }),
    ).toThrow(/larger than the whole bucket/);
  });
});

describe("BundleStore", () => {
  it("a worker opening a bucket nobody provisioned is told to start the orchestrator", async () => {
    const err = await openBundleStore(nc, bundleLimitsFromEnv({}), { provision: false }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain(BUNDLE_BUCKET);
  });

  it("provisions the bucket with its limits and updates them on the next provision", async () => {
    const limits = {
      maxBytes: 8 * 1024 * 1024,
      maxAgeS: 3600,
      bundleLimitBytes: 1024,
      replicas: 1,
    };
    await openBundleStore(nc, limits);
    const jsm = await openJetStreamManager(nc);
    let info = await jsm.streams.info(BUNDLE_STREAM);
    expect(info.config).toMatchObject({
      max_bytes: limits.maxBytes,
      max_age: 3600 * 1e9,
      storage: "file",
    });
    await openBundleStore(nc, { ...limits, maxBytes: 16 * 1024 * 1024, maxAgeS: 7200 });
    info = await jsm.streams.info(BUNDLE_STREAM);
    expect(info.config).toMatchObject({ max_bytes: 16 * 1024 * 1024, max_age: 7200 * 1e9 });
  });

  it("puts, gets and has by mission and commit; over the limit is refused", async () => {
    const limits = {
      maxBytes: 16 * 1024 * 1024,
      maxAgeS: 7200,
      bundleLimitBytes: 1024,
      replicas: 1,
    };
    const store = await openBundleStore(nc, limits);
    const worker = await openBundleStore(nc, limits, { provision: false });
    expect(bundleObjectName("m1", C)).toBe(`m1/${C}`);
    expect(await worker.get("m1", C)).toBeNull();
    expect(await worker.has("m1", C)).toBe(false);
    await worker.put("m1", C, new Uint8Array([1, 2, 3]));
    expect(await store.has("m1", C)).toBe(true);
    expect(Array.from((await store.get("m1", C))!)).toEqual([1, 2, 3]);
    expect(await store.has("m2", C)).toBe(false);
    const err = await worker.put("m1", D, new Uint8Array(2048)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleTooLargeError);
    expect((err as Error).message).toContain(
      "2.0 KiB (2048 bytes), over the limit of 1.0 KiB (1024 bytes)",
    );
    expect(await store.has("m1", D)).toBe(false);
    expect(await store.removeMission("m1")).toBe(1);
    expect(await store.get("m1", C)).toBeNull();
  });

  it("provisionStreams makes the bucket too (the orchestrator's start-up)", async () => {
    const other = await startNatsServer();
    const c = await connectBus({ servers: other.url, name: "bundle-provision" });
    try {
      await expect(
        openBundleStore(c, bundleLimitsFromEnv({}), { provision: false }),
      ).rejects.toThrow();
      await provisionStreams(c);
      const info = await (await openJetStreamManager(c)).streams.info(BUNDLE_STREAM);
      expect(info.config).toMatchObject({ max_bytes: 1024 ** 3, max_age: 7 * 24 * 3600 * 1e9 });
      await openBundleStore(c, bundleLimitsFromEnv({}), { provision: false });
    } finally {
      await c.close();
      await other.stop();
    }
  });

  it("a server that cannot reserve SWARM_BUNDLE_MAX_BYTES gets a smaller bucket, not none", async () => {
    const small = await startNatsServer({ configText: "jetstream { max_file_store: 256MB }" });
    const c = await connectBus({ servers: small.url, name: "bundle-small" });
    try {
      const warnings: string[] = [];
      const log = { ...silentLogger, warn: (_o: unknown, msg: string) => warnings.push(msg) };
      const limits = bundleLimitsFromEnv({});
      await provisionBundleBucket(c, limits, log as unknown as typeof silentLogger);
      const jsm = await openJetStreamManager(c);
      const got = (await jsm.streams.info(BUNDLE_STREAM)).config.max_bytes;
      expect(got).toBeLessThanOrEqual(128 * 1024 * 1024);
      expect(got).toBeGreaterThanOrEqual(16 * 1024 * 1024);
      expect(warnings.join("\n")).toMatch(/SWARM_BUNDLE_MAX_BYTES/);
      // ... and leaves room: other streams and buckets can still be made (max_bytes is reserved).
      await jsm.streams.add({ name: "AFTER_THE_BUCKET", subjects: ["after.>"] });
      // provisioning again keeps it, and still brings a new age limit
      await provisionBundleBucket(
        c,
        { ...limits, maxAgeS: 60 },
        log as unknown as typeof silentLogger,
      );
      const again = (await jsm.streams.info(BUNDLE_STREAM)).config;
      expect(again).toMatchObject({ max_bytes: got, max_age: 60 * 1e9 });
    } finally {
      await c.close();
      await small.stop();
    }
  });
});

describe("a server that stops answering", () => {
  it("fails the call after SWARM_BUNDLE_TIMEOUT_MS (nothing waits forever), and works again after", async () => {
    const stalled = await startNatsServer();
    const c = await connectBus({ servers: stalled.url, name: "bundle-store-stall" });
    try {
      const limits = { ...bundleLimitsFromEnv({ SWARM_BUNDLE_TIMEOUT_MS: "300" }) };
      const store = await openBundleStore(c, limits);
      await store.put("m-stall", C, new Uint8Array([1, 2, 3]));
      process.kill(stalled.pid, "SIGSTOP");
      try {
        await expect(store.get("m-stall", C)).rejects.toThrow(InfrastructureError);
        await expect(store.has("m-stall", C)).rejects.toThrow(/did not answer within 300 ms/);
      } finally {
        process.kill(stalled.pid, "SIGCONT");
      }
      expect(Array.from((await store.get("m-stall", C))!)).toEqual([1, 2, 3]);
    } finally {
      await c.close();
      await stalled.stop();
    }
  });
});
