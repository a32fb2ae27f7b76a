/**
 * Who the launcher's processes connect as. On the launcher's own server (and
 * on a server run with the block of `swarm nats-config`) each process gets
 * exactly its own identity: the orchestrator the orchestrator's seed, each
 * worker its agent's, the launcher itself the role it needs; never the
 * orchestrator's seed to a worker. On a server the user runs, everyone uses
 * the credential the user gave (or none).
 */
import type { ConnectBusOptions } from "../../bus/connect.ts";
import { identityName } from "../../bus/identity-store.ts";
import { inboxPrefixFor, type RoleIdentity } from "../../bus/nats-permissions.ts";
import { natsStatePaths, seedFilePath } from "../../bus/state-dir.ts";
import type { SwarmEnv } from "../../config.ts";
import { natsConnectOptions } from "../options.ts";

export type SwarmCredentials =
  /** Per-role nkeys from the state directory. */
  | { kind: "identities"; stateDir: string }
  /** The environment's credential (NATS_NKEY, NATS_CREDS, ...), or none: children inherit it. */
  | { kind: "given" };

/** The credential variables a child must not inherit when it gets its own identity. */
const CREDENTIAL_VARS = ["NATS_USER", "NATS_PASS", "NATS_TOKEN", "NATS_CREDS"] as const;

/** Variables to set (or, when undefined, remove) in a child's environment (pure). */
export function childCredentialEnv(
  creds: SwarmCredentials,
  id: RoleIdentity,
): Record<string, string | undefined> {
  if (creds.kind === "given") return {};
  const env: Record<string, string | undefined> = Object.fromEntries(
    CREDENTIAL_VARS.map((k) => [k, undefined]),
  );
  env.NATS_NKEY = seedFilePath(creds.stateDir, identityName(id.role, id.agent));
  env.SWARM_IDENTITIES = natsStatePaths(creds.stateDir).registry;
  env.SWARM_STATE_DIR = creds.stateDir;
  env.SWARM_NATS_INBOX_PREFIX = inboxPrefixFor(id);
  return env;
}

/** The launcher's own connection as `id`. */
export function launcherConnectOptions(
  creds: SwarmCredentials,
  id: RoleIdentity,
  url: string,
  name: string,
  env: SwarmEnv,
): ConnectBusOptions {
  if (creds.kind === "given") return natsConnectOptions({ env, natsUrl: url }, name);
  const inbox = inboxPrefixFor(id);
  return {
    servers: url,
    name,
    auth: {
      method: "nkey",
      seedFile: seedFilePath(creds.stateDir, identityName(id.role, id.agent)),
    },
    ...(inbox ? { inboxPrefix: inbox } : {}),
  };
}

/**
 * The variables that make the launcher's own event guard sign as `id`
 * (src/bus/event-guard.ts reads NATS_NKEY and SWARM_IDENTITIES); none for a
 * credential the user gave (then the environment says it already).
 */
export function signingEnv(creds: SwarmCredentials, id: RoleIdentity): Record<string, string> {
  if (creds.kind === "given") return {};
  return {
    NATS_NKEY: seedFilePath(creds.stateDir, identityName(id.role, id.agent)),
    SWARM_IDENTITIES: natsStatePaths(creds.stateDir).registry,
  };
}
