/**
 * Event signatures (src/bus/event-signing.ts) and the identity registry
 * (src/bus/identity-registry.ts): what is signed, what a receiver refuses,
 * and the registry's KV mirror with an entry an attacker slipped in.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { createUser, fromPublic } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSignature, signedBytes, type SignedMessage } from "../../src/bus/event-signing.ts";
import { openEventGuard } from "../../src/bus/event-guard.ts";
import { SIGNATURE_HEADER, SIGNER_HEADER } from "../../src/bus/identity.ts";
import {
  IDENTITIES_BUCKET,
  IdentityRegistry,
  identityBytes,
  openIdentityRegistry,
  publishIdentities,
  readIdentityRegistryFile,
  readSeedFile,
} from "../../src/bus/identity-registry.ts";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { BadInputError } from "../../src/errors.ts";
import { silentLogger } from "../../src/log.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { makeIdentities, type TestIdentities } from "../helpers/identities.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";

let dir: string;
let ids: TestIdentities;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "squad-signing-"));
  ids = await makeIdentities(dir, ["orchestrator", "operator", "worker-builder"]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const data = new TextEncoder().encode('{"schema":1,"type":"task_completed"}');
const subject = "squad.coordination";

function message(
  headers: Record<string, string>,
  over: Partial<SignedMessage> = {},
): SignedMessage {
  return { subject, data, header: (n) => headers[n], ...over };
}
const lookup = () => (k: string) => new IdentityRegistry(ids.file).get(k);

describe("event signatures", () => {
  it("signs the subject and the exact bytes; nkeys verifies the same signature", () => {
    const builder = ids.get("worker-builder");
    const h = builder.signer.sign(subject, data);
    expect(h[SIGNER_HEADER]).toBe(builder.record.public_key);
    expect(h[SIGNATURE_HEADER]).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(checkSignature(message(h), lookup())).toEqual({ ok: true, signer: builder.record });
    // Any Ed25519/nkeys implementation checks it: the header is base64url over the documented bytes.
    const sig = Buffer.from(h[SIGNATURE_HEADER], "base64url");
    expect(fromPublic(builder.record.public_key).verify(signedBytes(subject, data), sig)).toBe(
      true,
    );
    expect(new TextDecoder().decode(signedBytes(subject, data))).toBe(
      `squad-event-v1\nsquad.coordination\n${new TextDecoder().decode(data)}`,
    );
  });

  it.each([
    ["no headers", {}, {}, /unsigned/],
    [
      "a changed payload",
      null,
      { data: new TextEncoder().encode('{"schema":1,"type":"task_failed"}') },
      /bad signature for worker-builder/,
    ],
    ["another subject", null, { subject: "squad.tasks.tester" }, /bad signature/],
    ["a garbled signature", { [SIGNATURE_HEADER]: "x".repeat(10) }, {}, /bad signature/],
  ] as const)("refuses %s", (_name, headers, over, reason) => {
    const h = { ...ids.get("worker-builder").signer.sign(subject, data), ...(headers ?? {}) };
    const r = checkSignature(
      message(headers && Object.keys(headers).length === 0 ? {} : h, over),
      lookup(),
    );
    expect(r.ok).toBe(false);
    expect(r.ok ? "" : r.reason).toMatch(reason);
  });

  it("refuses a valid signature by a key the registry does not know", async () => {
    const stranger = await makeIdentities(join(dir, "stranger"), ["worker-builder"]);
    const h = stranger.get("worker-builder").signer.sign(subject, data);
    const r = checkSignature(message(h), lookup());
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/not in the registry/) });
  });
});

describe("registry and seed files", () => {
  it("reads what the provisioning writes", async () => {
    expect((await readIdentityRegistryFile(ids.registryPath)).identities).toHaveLength(3);
    const seed = await readSeedFile(ids.get("operator").seedPath);
    expect(new TextDecoder().decode(seed)).toMatch(/^SU[A-Z2-7]{56}$/);
  });

  it.each([
    ["missing", null, /can't read the identity registry/],
    ["not JSON", "{", /not JSON/],
    [
      "a worker without its agent",
      JSON.stringify({
        version: 1,
        identities: [{ name: "worker-x", role: "worker", public_key: createUser().getPublicKey() }],
      }),
      /names its agent/,
    ],
  ])("a registry file that is %s is a BadInputError", async (_name, text, reason) => {
    const p = join(dir, `bad-${_name.replace(/\W/g, "")}.json`);
    if (text !== null) await writeFile(p, text);
    const err = await readIdentityRegistryFile(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(reason);
  });

  it("a seed file without a seed is a BadInputError", async () => {
    const p = join(dir, "empty.nk");
    await writeFile(p, "no seed here\n");
    await expect(readSeedFile(p)).rejects.toThrow(/holds no nkey user seed/);
  });
});

describe("on a real server", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectBus({ servers: server.url, name: "signing-test" });
    await provisionStreams(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("the orchestrator mirrors the registry into KV; a process with only its seed learns it; a forged entry is not trusted", async () => {
    const orchestrator = ids.get("orchestrator");
    await publishIdentities(nc, new IdentityRegistry(ids.file), orchestrator.signer);
    // An attacker who may write the bucket registers itself as an orchestrator, self-signed,
    // and as a second operator signed with its own key.
    const attacker = await makeIdentities(join(dir, "attacker"), ["orchestrator", "operator"]);
    const kv = await new Kvm(nc).open(IDENTITIES_BUCKET);
    for (const name of ["orchestrator", "operator"]) {
      const a = attacker.get(name);
      await kv.put(
        a.record.public_key,
        JSON.stringify({
          record: a.record,
          signed_by: attacker.get("orchestrator").record.public_key,
          signature: attacker.get("orchestrator").signer.signBytes(identityBytes(a.record)),
        }),
      );
    }
    // With the file (the trust anchor): the attacker's entries are ignored.
    const anchored = await openIdentityRegistry(nc, { file: ids.file, log: silentLogger });
    expect(anchored.registry.get(attacker.get("operator").record.public_key)).toBeUndefined();
    expect(anchored.registry.size).toBe(3);
    await anchored.stop();
    // Without it, a reader trusts what the bucket's orchestrators signed (the server's
    // permissions are what keeps the attacker out of the bucket then).
    const unanchored = await openIdentityRegistry(nc, { log: silentLogger });
    expect(unanchored.registry.get(ids.get("worker-builder").record.public_key)).toMatchObject({
      name: "worker-builder",
    });
    await unanchored.stop();
    await kv.delete(attacker.get("operator").record.public_key);
    await kv.delete(attacker.get("orchestrator").record.public_key);
  });

  it("a publisher with an identity signs; a guard with the registry admits it and refuses the unsigned copy", async () => {
    const operator = await openEventGuard(nc, {
      env: ids.env("operator"),
      log: silentLogger,
      expect: { role: "operator" },
    });
    const receiver = await openEventGuard(nc, {
      env: { SWARM_IDENTITIES: ids.registryPath },
      log: silentLogger,
    });
    expect(receiver.mode()).toBe("signed");
    const event = makeEvent(
      "mission_cancelled",
      { mission_id: "m-sign-1", source: "cli" },
      { reason: "test" },
    );
    const got: Array<{ signed: boolean; accept: boolean }> = [];
    const sub = nc.subscribe(subject, {
      callback: (_e, m) => {
        got.push({
          signed: Boolean(m.headers?.get(SIGNER_HEADER)),
          accept: receiver.admit(m, event).accept,
        });
      },
    });
    await createPublisher(nc, { signer: operator.signer }).publish(event);
    await createPublisher(nc).publish({ ...event, id: "unsigned-copy" });
    await nc.flush();
    await expect.poll(() => got.length).toBe(2);
    expect(got).toEqual([
      { signed: true, accept: true },
      { signed: false, accept: false },
    ]);
    expect(receiver.refused()).toBe(1);
    sub.unsubscribe();
    await operator.stop();
    await receiver.stop();
  });

  it("a process given another role's seed does not start", async () => {
    await expect(
      openEventGuard(nc, {
        env: ids.env("operator"),
        expect: { role: "worker", agent: "builder" },
      }),
    ).rejects.toThrow(/holds the identity operator .* runs as worker-builder/);
  });
});
