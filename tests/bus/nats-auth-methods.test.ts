/**
 * A creds file (NATS_CREDS) of an operator/JWT deployment, as managed NATS
 * services and `nsc` hand them out, against a real nats-server in operator
 * mode (operator, account and user JWTs made by @nats-io/jwt), through the
 * real `swarm status`. A user of an account the server does not know exits
 * 3, naming the file, never the seed. (Token, nkey, user/password and TLS:
 * tests/bus/nats-auth-connect.test.ts.)
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { credsAuthenticator } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { runSwarm } from "../helpers/swarm-process.ts";

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
