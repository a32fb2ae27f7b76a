/**
 * The config file of the launcher's own nats-server (pure): 127.0.0.1 only,
 * JetStream with its store, and the swarm's authorization block (absent only
 * when an unauthenticated server was asked for).
 */
export interface LocalNatsConfig {
  port: number;
  storeDir: string;
  /** The block of renderAuthorizationBlock, or null for a server without authentication. */
  authorization: string | null;
}

export function renderLocalNatsConfig(c: LocalNatsConfig): string {
  return [
    "# Written by the Squad launcher (swarm up / deploy) for its own nats-server; regenerated at",
    "# every start from the state directory's identity registry.",
    `listen: "127.0.0.1:${c.port}"`,
    `jetstream { store_dir: ${JSON.stringify(c.storeDir)} }`,
    "",
    c.authorization ?? "# No authorization: started with --insecure-nats / SWARM_NATS_AUTH=none.\n",
  ].join("\n");
}
