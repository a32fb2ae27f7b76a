/**
 * Every way a client can authenticate, against a real nats-server configured
 * for it (keys and certificates generated here): a token, a user and
 * password, an nkey seed file, TLS with a private CA. Each has its
 * wrong-credential case: exit 3 (InfrastructureError) naming the server and
 * the method, never the secret. The shipped placeholder passwords are
 * refused before connecting.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createUser } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type ConnectBusOptions } from "../../src/bus/connect.ts";
import { BadInputError, InfrastructureError } from "../../src/errors.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { runSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
const TOKEN = `t${Date.now().toString(36)}secret`;
const PASS = `p${Date.now().toString(36)}secret`;
let dir: string;
const servers: NatsServerHandle[] = [];

async function server(configText: string, readyAuth: object): Promise<NatsServerHandle> {
  const s = await startNatsServer({ configText, jetstream: false, readyAuth });
  servers.push(s);
  return s;
}

async function refused(opts: ConnectBusOptions): Promise<InfrastructureError> {
  const err = await connectBus({ timeoutMs: 3000, ...opts }).then(
    async (nc) => {
      await nc.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err, "the server accepted it").toBeInstanceOf(InfrastructureError);
  return err as InfrastructureError;
}

async function accepted(opts: ConnectBusOptions): Promise<void> {
  const nc = await connectBus(opts);
  await nc.flush();
  await nc.close();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-auth-"));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe("NATS authentication methods (real servers)", () => {
  it("a token (NATS_TOKEN): right one connects, a wrong one exits 3 without echoing either", async () => {
    const { tokenAuthenticator } = await import("@nats-io/transport-node");
    const s = await server(`authorization { token: "${TOKEN}" }`, {
      authenticator: tokenAuthenticator(TOKEN),
    });
    await accepted({ servers: s.url, name: "t", auth: { method: "token", token: TOKEN } });
    const err = await refused({
      servers: s.url,
      name: "t",
      auth: { method: "token", token: "nope-x" },
    });
    expect(err.message).toContain(
      `NATS at ${s.url} refused the credentials (a token (NATS_TOKEN))`,
    );
    expect(`${err.message} ${err.hint}`).not.toMatch(/nope-x|secret/);
    // The CLI: exit 3, the message on stderr, no secret.
    const r = await runSwarm(["status"], swarmEnv(s.url, dir, { NATS_TOKEN: "wrong-token-value" }));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("refused the credentials (a token (NATS_TOKEN))");
    expect(r.stderr).not.toContain("wrong-token-value");
  });

  it("a user and password (NATS_USER/NATS_PASS or in the URL)", async () => {
    const { usernamePasswordAuthenticator } = await import("@nats-io/transport-node");
    const s = await server(`authorization { users: [ { user: alice, password: "${PASS}" } ] }`, {
      authenticator: usernamePasswordAuthenticator("alice", PASS),
    });
    await accepted({
      servers: s.url,
      name: "u",
      auth: { method: "user", user: "alice", pass: PASS },
    });
    await accepted({ servers: s.url.replace("nats://", `nats://alice:${PASS}@`), name: "u" });
    const err = await refused({
      servers: s.url,
      name: "u",
      auth: { method: "user", user: "alice", pass: "bad-pass" },
    });
    expect(err.message).toContain('(user "alice" with a password)');
    expect(err.message).not.toContain("bad-pass");
  });

  it("an nkey seed file (NATS_NKEY): its key connects, another key exits 3 naming the file", async () => {
    const { nkeyAuthenticator } = await import("@nats-io/transport-node");
    const good = createUser();
    const other = createUser();
    const goodFile = path.join(dir, "good.nk");
    const otherFile = path.join(dir, "other.nk");
    await writeFile(goodFile, `${new TextDecoder().decode(good.getSeed())}\n`, { mode: 0o600 });
    await writeFile(otherFile, `${new TextDecoder().decode(other.getSeed())}\n`, { mode: 0o600 });
    const s = await server(`authorization { users: [ { nkey: ${good.getPublicKey()} } ] }`, {
      authenticator: nkeyAuthenticator(good.getSeed()),
    });
    await accepted({ servers: s.url, name: "n", auth: { method: "nkey", seedFile: goodFile } });
    const err = await refused({
      servers: s.url,
      name: "n",
      auth: { method: "nkey", seedFile: otherFile },
    });
    expect(err.message).toContain(`(nkey seed file ${otherFile})`);
    expect(err.message).not.toContain(new TextDecoder().decode(other.getSeed()));
    // A file that holds no seed is bad input (exit 2), named, its content not shown.
    const junk = path.join(dir, "junk.nk");
    await writeFile(junk, "not a seed at all\n");
    const bad = await connectBus({
      servers: s.url,
      name: "n",
      auth: { method: "nkey", seedFile: junk },
    }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadInputError);
    expect((bad as Error).message).toContain(junk);
    expect((bad as Error).message).not.toContain("not a seed");
  });

  it("TLS with a private CA (NATS_CA, NATS_CERT, NATS_KEY): trusted connects, untrusted exits 3", async () => {
    const sh = (cmd: string, args: string[]) => run(cmd, args, { cwd: dir });
    await sh("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/CN=squad-test-ca",
    ]);
    await sh("openssl", [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "srv.key",
      "-out",
      "srv.csr",
      "-subj",
      "/CN=localhost",
    ]);
    await writeFile(path.join(dir, "ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    await sh("openssl", [
      "x509",
      "-req",
      "-in",
      "srv.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "srv.pem",
      "-days",
      "1",
      "-extfile",
      "ext",
    ]);
    await sh("openssl", [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "cli.key",
      "-out",
      "cli.csr",
      "-subj",
      "/CN=squad-client",
    ]);
    await sh("openssl", [
      "x509",
      "-req",
      "-in",
      "cli.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "cli.pem",
      "-days",
      "1",
    ]);
    // An unrelated CA: what a client trusting the wrong authority has.
    await sh("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "other.key",
      "-out",
      "other.pem",
      "-days",
      "1",
      "-subj",
      "/CN=other-ca",
    ]);
    const f = (n: string) => path.join(dir, n);
    const tls = { caFile: f("ca.pem"), certFile: f("cli.pem"), keyFile: f("cli.key") };
    const s = await server(
      `tls { cert_file: "${f("srv.pem")}", key_file: "${f("srv.key")}", ca_file: "${f("ca.pem")}", verify: true }`,
      { tls },
    );
    await accepted({ servers: s.url, name: "tls", tls });
    const err = await refused({
      servers: s.url,
      name: "tls",
      tls: { ...tls, caFile: f("other.pem") },
    });
    expect(err.message).toContain(`NATS at ${s.url}`);
    expect(err.message).toContain(`TLS (CA ${f("other.pem")}`);
  });

  it("the shipped placeholder passwords are refused before connecting (exit 2, how to generate real ones)", async () => {
    const err = await connectBus({
      servers: "nats://builder:change-me-builder@127.0.0.1:1",
      name: "p",
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain("swarm nats-config --generate");
    const r = await runSwarm(
      ["worker", "--agent", "builder"],
      swarmEnv("nats://127.0.0.1:1", dir, { NATS_USER: "builder", NATS_PASS: "change-me-builder" }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("shipped placeholder");
  });
});
