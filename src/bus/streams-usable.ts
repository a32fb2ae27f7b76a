/**
 * Streams for a client that may not create them (an operator, a watcher):
 * provision them when this connection may, else check that they exist, and
 * say who creates them when they don't.
 */
import { errorMessage, InfrastructureError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import { STREAMS } from "../schema/index.ts";
import type { NatsConnection } from "./connect.ts";
import { openJetStreamManager } from "./jetstream-manager.ts";
import { isPermissionError } from "./permission-error.ts";
import { provisionStreams, type StreamOptions } from "./streams.ts";

export async function ensureStreamsUsable(
  nc: NatsConnection,
  opts: StreamOptions & { log?: Logger } = {},
): Promise<void> {
  const log = opts.log ?? silentLogger;
  try {
    await provisionStreams(nc, opts);
    return;
  } catch (err) {
    if (!isPermissionError(err)) throw err;
  }
  const jsm = await openJetStreamManager(nc);
  for (const stream of Object.values(STREAMS)) {
    await jsm.streams.info(stream).catch((e: unknown) => {
      throw new InfrastructureError(
        `stream ${stream} is not usable and this NATS user may not create it: ${errorMessage(e)}`,
        "start the orchestrator first (`swarm orchestrator` or `swarm up`): it provisions the streams",
        { cause: e },
      );
    });
  }
  log.debug("streams exist; this NATS user may not change them");
}
