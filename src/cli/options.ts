import { access } from "node:fs/promises";
import path from "node:path";
import { Option, type Command } from "commander";
import { natsAnswers, type ConnectBusOptions } from "../bus/connect.ts";
import { identityName, readIdentityRegistry, readSeedFile } from "../bus/identity-store.ts";
import { readLocalServerRecord } from "../bus/local-server-record.ts";
import { authFromEnv, tlsFromEnv } from "../bus/nats-auth.ts";
import { inboxPrefixFor, type RoleIdentity } from "../bus/nats-permissions.ts";
import { natsStatePaths, seedFilePath, stateDirOf } from "../bus/state-dir.ts";
import { readEnv, type SwarmEnv } from "../config.ts";
import { BadInputError, InfrastructureError } from "../errors.ts";
import { ALLOW_WORKSPACE_FLAG } from "../orchestrator/workspace-seed.ts";

export interface CommonFlags {
  nats?: string;
  workspace?: string;
  roster?: string;
}

export interface Resolved {
  env: SwarmEnv;
  natsUrl: string;
  /** The URL came from --nats or NATS_URL (not the default). */
  natsExplicit: boolean;
  /** SWARM_STATE_DIR, absolute. */
  stateDir: string;
  workspaceRoot: string;
  rosterPath: string | undefined;
}

/** --nats, --workspace, --roster: flags win over the environment. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--nats <url>", "NATS server URL").env("NATS_URL"))
    .addOption(
      new Option("--workspace <dir>", "root of mission workspaces and reports").env(
        "SWARM_WORKSPACE",
      ),
    )
    .addOption(new Option("--roster <file>", "roster file (YAML or JSON)").env("SWARM_ROSTER"));
}

/**
 * `--allow-workspace DIR`, repeatable: a directory outside the brief's own
 * tree that its `workspace:` may name (see workspace-seed.ts).
 */
export function allowWorkspaceOption(): Option {
  return new Option(
    `${ALLOW_WORKSPACE_FLAG} <dir>`,
    "let the brief's workspace: name this directory (or one inside it) outside the brief's directory; repeatable",
  ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
}

export function resolveCommon(flags: CommonFlags): Resolved {
  const env = readEnv();
  return {
    env,
    natsUrl: flags.nats ?? env.NATS_URL,
    natsExplicit: flags.nats !== undefined,
    stateDir: stateDirOf({ SWARM_STATE_DIR: env.SWARM_STATE_DIR }),
    workspaceRoot: path.resolve(flags.workspace ?? env.SWARM_WORKSPACE),
    rosterPath: flags.roster ?? env.SWARM_ROSTER,
  };
}

/** `--insecure-nats` of the launchers (deploy, up). */
export function withLauncherNatsOptions(cmd: Command): Command {
  return cmd.option(
    "--insecure-nats",
    "run (or use) NATS without authentication; also SWARM_NATS_AUTH=none. Warned about on every start",
  );
}

/** What the launchers need to know about NATS security, from flags and environment. */
export function launcherNatsSettings(
  flags: { insecureNats?: boolean },
  common: Pick<Resolved, "env" | "natsUrl">,
): { insecureNats: boolean; credentialGiven: boolean } {
  return {
    insecureNats: flags.insecureNats === true || common.env.SWARM_NATS_AUTH === "none",
    credentialGiven: authFromEnv(common.env) !== undefined || /@/.test(common.natsUrl),
  };
}

/** Parses a positive integer flag, or throws a bad-input error naming it. */
export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new BadInputError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/**
 * What every command passes to connectBus: the server(s), the one credential
 * of the environment (NATS_CREDS, NATS_NKEY, NATS_TOKEN, NATS_USER/NATS_PASS,
 * or `user:pass@` in the URL), TLS (NATS_CA, NATS_CERT, NATS_KEY) and the
 * inbox prefix of a restricted user (SWARM_NATS_INBOX_PREFIX).
 */
export function natsConnectOptions(
  common: Pick<Resolved, "env" | "natsUrl">,
  name: string,
  servers = common.natsUrl,
): ConnectBusOptions {
  const auth = authFromEnv(common.env);
  const tls = tlsFromEnv(common.env);
  return {
    servers,
    name,
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
    ...(common.env.SWARM_NATS_INBOX_PREFIX
      ? { inboxPrefix: common.env.SWARM_NATS_INBOX_PREFIX }
      : {}),
  };
}

/**
 * Like natsConnectOptions, and on the launcher's machine it finds the rest by
 * itself: with no URL and no credential given, the server recorded in the
 * state directory (`swarm up` / `deploy` started it) and the seed of the
 * command's own role (`<state>/nats/creds/<role>.nk`, its inbox prefix too);
 * with the recorded server's URL given and no credential, the role's seed.
 */
export async function clientConnectOptions(
  common: Pick<Resolved, "env" | "natsUrl" | "natsExplicit" | "stateDir">,
  name: string,
  identity: RoleIdentity,
): Promise<ConnectBusOptions> {
  const given = natsConnectOptions(common, name);
  if (given.auth?.method === "nkey" && !given.inboxPrefix) {
    // A seed of the swarm's registry: its role's inbox prefix, without being told.
    const registry = await readIdentityRegistry(
      common.env.SWARM_IDENTITIES ?? natsStatePaths(common.stateDir).registry,
    ).catch(() => null);
    const { publicKey } = await readSeedFile(given.auth.seedFile);
    const record = registry?.identities.find((r) => r.public_key === publicKey);
    const inbox = record ? inboxPrefixFor(record) : undefined;
    if (inbox) return { ...given, inboxPrefix: inbox };
  }
  if (given.auth || /@/.test(common.natsUrl)) return given;
  const record = await readLocalServerRecord(common.stateDir);
  if (!record || (common.natsExplicit && !sameServer(record.url, common.natsUrl))) return given;
  if (!(await natsAnswers(record.url))) {
    if (common.natsExplicit) return given;
    throw new InfrastructureError(
      `the swarm's NATS server recorded in ${common.stateDir} (${record.url}) does not answer`,
      "start the swarm (`swarm up`, or `scripts/deploy-swarm`), or set NATS_URL to a server that runs",
    );
  }
  if (record.auth === "none") return { ...given, servers: record.url };
  const seedFile = seedFilePath(common.stateDir, identityName(identity.role, identity.agent));
  try {
    await access(seedFile);
  } catch {
    throw new InfrastructureError(
      `the swarm's NATS server at ${record.url} needs the ${identityName(identity.role, identity.agent)} ` +
        `identity, and ${seedFile} is not readable by this user`,
      "run the command as the user who started the swarm, or set NATS_NKEY / NATS_CREDS",
    );
  }
  const inbox = inboxPrefixFor(identity);
  adoptIdentity(seedFile, natsStatePaths(common.stateDir).registry);
  return {
    ...given,
    servers: record.url,
    auth: { method: "nkey", seedFile },
    ...(inbox ? { inboxPrefix: inbox } : {}),
  };
}

/**
 * The identity found in the state directory becomes this process's: what the
 * command publishes is signed with it (src/bus/event-guard.ts reads NATS_NKEY
 * and SWARM_IDENTITIES from the environment). Only for a command that was
 * given neither.
 */
function adoptIdentity(seedFile: string, registryFile: string): void {
  process.env.NATS_NKEY ??= seedFile;
  process.env.SWARM_IDENTITIES ??= registryFile;
}

function sameServer(a: string, b: string): boolean {
  const norm = (u: string) => u.replace(/^nats:\/\//, "").replace(/^localhost:/, "127.0.0.1:");
  return norm(a) === norm(b);
}
