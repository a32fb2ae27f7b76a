/**
 * The ways NATS users authenticate, each against a real nats-server
 * configured for it, through the real `swarm` CLI (`swarm status`): a token
 * (NATS_TOKEN), an nkey seed file (NATS_NKEY), a creds file of an
 * operator/JWT deployment (NATS_CREDS; JWTs made by @nats-io/jwt), user and password, and TLS
 * with a client certificate (NATS_CA, NATS_CERT, NATS_KEY; certificates made
 * by the test with openssl). A wrong credential exits 3, naming the server
 * and the method, never echoing the secret.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { credsAuthenticator, nkeyAuthenticator, tokenAuthenticator } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { runSwarm } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
let dir: string;
const servers: NatsServerHandle[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-auth-methods-"));
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  await rm(dir, { recursive: true, force: true });
});

/** `swarm status --json` with these NATS_* variables (nothing else of the caller's NATS settings). */
function status(url: string, env: Record<string, string>) {
  return runSwarm(
    ["status", "--json"],
    {
      ...process.env,
      NATS_URL: url,
      NATS_CREDS: undefined,
      NATS_NKEY: undefined,
      NATS_TOKEN: undefined,
      NATS_USER: undefined,
      NATS_PASS: undefined,
      SWARM_STATE_DIR: path.join(dir, "no-state"),
      SWARM_WORKSPACE: path.join(dir, "ws"),
      ...env,
    },
    { timeoutMs: 60_000 },
  );
}

describe("NATS authentication methods", () => {
  it("a token: the right one connects, a wrong one exits 3 naming the method, not the token", async () => {
    const token = "tok-3f9c2e7a1b";
    const server = await startNatsServer({
      configText: `authorization { token: "${token}" }`,
      readyAuth: { authenticator: tokenAuthenticator(token) },
    });
    servers.push(server);
    const ok = await status(server.url, { NATS_TOKEN: token });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty("agents");
    const bad = await status(server.url, { NATS_TOKEN: "tok-wrong-77aa" });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/token/i);
    expect(bad.stderr).toContain(`127.0.0.1:${server.port}`);
    expect(bad.stderr).not.toContain("tok-wrong-77aa");
  }, 90_000);

  it("an nkey seed file: its own seed connects, another seed exits 3 naming the file", async () => {
    const user = createUser();
    const stranger = createUser();
    const seedFile = path.join(dir, "user.nk");
    const strangerFile = path.join(dir, "stranger.nk");
    await writeFile(seedFile, new TextDecoder().decode(user.getSeed()), { mode: 0o600 });
    await writeFile(strangerFile, new TextDecoder().decode(stranger.getSeed()), { mode: 0o600 });
    const server = await startNatsServer({
      configText: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`,
      readyAuth: { authenticator: nkeyAuthenticator(user.getSeed()) },
    });
    servers.push(server);
    const ok = await status(server.url, { NATS_NKEY: seedFile });
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await status(server.url, { NATS_NKEY: strangerFile });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain(strangerFile);
    expect(bad.stderr).not.toContain(new TextDecoder().decode(stranger.getSeed()));
  }, 90_000);

  it("user and password: right connects, wrong exits 3 without the password", async () => {
    const server = await startNatsServer({
      configText: `authorization { users: [ { user: "ops", password: "pw-right-5d1e" } ] }`,
      readyAuth: { user: "ops", pass: "pw-right-5d1e" },
    });
    servers.push(server);
    const ok = await status(server.url, { NATS_USER: "ops", NATS_PASS: "pw-right-5d1e" });
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await status(server.url, { NATS_USER: "ops", NATS_PASS: "pw-wrong-9c3b" });
    expect(bad.code).toBe(3);
    expect(bad.stderr).not.toContain("pw-wrong-9c3b");
  }, 90_000);

  it("TLS with a client certificate: the CA and a signed certificate connect; no certificate exits 3", async () => {
    const f = (n: string) => path.join(dir, n);
    const ssl = (...args: string[]) => run("openssl", args, { cwd: dir });
    await ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=squad-test-ca",
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.pem"),
    );
    for (const who of ["server", "client"]) {
      await ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        `/CN=${who}`,
        "-keyout",
        f(`${who}.key`),
        "-out",
        f(`${who}.csr`),
      );
      await writeFile(
        f(`${who}.ext`),
        who === "server"
          ? "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          : "extendedKeyUsage=clientAuth\n",
      );
      await ssl(
        "x509",
        "-req",
        "-in",
        f(`${who}.csr`),
        "-CA",
        f("ca.pem"),
        "-CAkey",
        f("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f(`${who}.ext`),
        "-out",
        f(`${who}.pem`),
      );
    }
    const server = await startNatsServer({
      configText: [
        "tls {",
        `  cert_file: ${JSON.stringify(f("server.pem"))}`,
        `  key_file: ${JSON.stringify(f("server.key"))}`,
        `  ca_file: ${JSON.stringify(f("ca.pem"))}`,
        "  verify: true",
        "}",
      ].join("\n"),
      readyAuth: {
        tls: { caFile: f("ca.pem"), certFile: f("client.pem"), keyFile: f("client.key") },
      },
    });
    servers.push(server);
    const ok = await status(server.url, {
      NATS_CA: f("ca.pem"),
      NATS_CERT: f("client.pem"),
      NATS_KEY: f("client.key"),
    });
    expect(ok.code, ok.stderr).toBe(0);
    const noCert = await status(server.url, { NATS_CA: f("ca.pem") });
    expect(noCert.code).toBe(3);
    expect(noCert.stderr).toContain(`127.0.0.1:${server.port}`);
  }, 120_000);
});

describe("a NATS creds file (operator/JWT mode)", () => {
  it("its user connects and runs swarm status; a user the account never signed exits 3", async () => {
    const operator = createOperator();
    const account = createAccount();
    const user = createUser();
    const opJwt = await encodeOperator("squad-test-operator", operator);
    const accountJwt = await encodeAccount(
      "squad",
      account,
      // JetStream for the account: the swarm's streams live there.
      {
        limits: {
          conn: -1,
          subs: -1,
          data: -1,
          payload: -1,
          imports: -1,
          exports: -1,
          wildcards: true,
          leaf: -1,
          mem_storage: -1,
          disk_storage: -1,
          streams: -1,
          consumer: -1,
        },
      },
      { signer: operator },
    );
    // JetStream in operator mode needs a system account.
    const system = createAccount();
    const systemJwt = await encodeAccount("SYS", system, {}, { signer: operator });
    const userJwt = await encodeUser("swarm-cli", user, account);
    const credsFile = path.join(dir, "user.creds");
    await writeFile(credsFile, fmtCreds(userJwt, user), { mode: 0o600 });
    // Signed by an account the server does not know: refused.
    const rogue = createAccount();
    const rogueUser = createUser();
    const rogueFile = path.join(dir, "rogue.creds");
    await writeFile(rogueFile, fmtCreds(await encodeUser("rogue", rogueUser, rogue), rogueUser), {
      mode: 0o600,
    });
    const server = await startNatsServer({
      configText: [
        `operator: ${opJwt}`,
        "resolver: MEMORY",
        `system_account: ${system.getPublicKey()}`,
        `resolver_preload: { ${account.getPublicKey()}: ${accountJwt}, ${system.getPublicKey()}: ${systemJwt} }`,
      ].join("\n"),
      readyAuth: { authenticator: credsAuthenticator(fmtCreds(userJwt, user)) },
    });
    servers.push(server);
    const ok = await status(server.url, { NATS_CREDS: credsFile });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty("agents");
    const bad = await status(server.url, { NATS_CREDS: rogueFile });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain(rogueFile);
    expect(bad.stderr).not.toContain(new TextDecoder().decode(rogueUser.getSeed()));
  }, 120_000);
});
