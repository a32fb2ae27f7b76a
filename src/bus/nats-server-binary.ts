import { constants as fsConstants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { InfrastructureError } from "../errors.ts";

/** Where Debian's package puts it (not on a normal user's PATH). */
export const DEBIAN_NATS_SERVER = "/usr/sbin/nats-server";

export const NATS_INSTALL_HINT =
  "install nats-server (`apt-get install nats-server`; scripts/deploy-swarm does it when run as root), " +
  "or set NATS_SERVER_BIN to its path, or set NATS_URL to a running nats-server with JetStream";

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary every part that starts one uses (the launcher, the
 * benchmarks, the chaos runs): NATS_SERVER_BIN (which must then exist), else
 * `nats-server` on PATH, else Debian's path. `context` opens the error
 * message (e.g. "no NATS answers and").
 */
export async function findNatsServerBinary(
  env: NodeJS.ProcessEnv = process.env,
  context = "",
): Promise<string> {
  const lead = context ? `${context} ` : "";
  const fromEnv = env.NATS_SERVER_BIN;
  if (fromEnv) {
    if (await isExecutable(fromEnv)) return fromEnv;
    throw new InfrastructureError(
      `${lead}NATS_SERVER_BIN=${fromEnv} is not an executable file`,
      NATS_INSTALL_HINT,
    );
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, "nats-server");
    if (await isExecutable(candidate)) return candidate;
  }
  if (await isExecutable(DEBIAN_NATS_SERVER)) return DEBIAN_NATS_SERVER;
  throw new InfrastructureError(
    `${lead}no nats-server binary was found (NATS_SERVER_BIN, PATH, ${DEBIAN_NATS_SERVER})`,
    NATS_INSTALL_HINT,
  );
}
