/**
 * The swarm's state directory: what a swarm keeps for itself and never puts
 * in a mission's workspace (credentials, the key registry, the local NATS
 * server's config and address). `SWARM_STATE_DIR`, default `.swarm/state`
 * relative to the working directory, like SWARM_WORKSPACE's `.swarm/workspace`.
 *
 * ```
 * <state>/nats/              0700
 *   creds/<name>.nk          0600  one nkey seed per identity (orchestrator, worker-<agent>, operator, watcher)
 *   identities.json                the public registry (IdentityRegistryFile)
 *   nats-server.conf         0600  the launcher's local server config (authorization block included)
 *   server.json                    the launcher's local server: url, pid (so other commands find it)
 * ```
 */
import path from "node:path";

export const DEFAULT_STATE_DIR = ".swarm/state";

/** The state directory of `env` (SWARM_STATE_DIR), absolute. */
export function stateDirOf(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.SWARM_STATE_DIR?.trim() || DEFAULT_STATE_DIR);
}

export interface NatsStatePaths {
  dir: string;
  credsDir: string;
  registry: string;
  serverConfig: string;
  serverRecord: string;
}

/** Where the NATS part of the state lives (pure). */
export function natsStatePaths(stateDir: string): NatsStatePaths {
  const dir = path.join(stateDir, "nats");
  return {
    dir,
    credsDir: path.join(dir, "creds"),
    registry: path.join(dir, "identities.json"),
    serverConfig: path.join(dir, "nats-server.conf"),
    serverRecord: path.join(dir, "server.json"),
  };
}

/** `<state>/nats/creds/<name>.nk`: the seed file of identity `name` (pure). */
export function seedFilePath(stateDir: string, name: string): string {
  return path.join(natsStatePaths(stateDir).credsDir, `${name}.nk`);
}
