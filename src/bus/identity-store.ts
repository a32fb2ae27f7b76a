/**
 * The identities of a swarm on disk: one nkey seed file per identity under
 * `<state>/nats/creds/` (0600, directories 0700) and the public registry
 * `<state>/nats/identities.json` (src/bus/identity.ts). Generated on first
 * start, reused afterwards; an agent added to the roster gets its identity
 * the next time. The seed files are the truth: the registry is rewritten
 * from them (plus any public-only records someone added, e.g. for workers
 * on other machines).
 */
import { chmod, mkdir, readFile, readdir, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { BadInputError, InfrastructureError, errorMessage } from "../errors.ts";
import { AGENT_NAME_PATTERN } from "../schema/identifiers.ts";
import {
  IdentityRecord,
  IdentityRegistryFile,
  type Role,
  type SigningIdentity,
} from "./identity.ts";
import { natsStatePaths, seedFilePath } from "./state-dir.ts";

/** The identity's name: its seed file's name and the registry key (pure). */
export function identityName(role: Role, agent?: string): string {
  if (role === "worker") {
    if (!agent) throw new Error("a worker identity names its agent");
    return `worker-${agent}`;
  }
  return role;
}

/** Role and agent of an identity name ("worker-builder" → worker, builder), or null (pure). */
export function parseIdentityName(name: string): { role: Role; agent?: string } | null {
  if (name === "orchestrator" || name === "operator" || name === "watcher") return { role: name };
  const m = /^worker-(.+)$/.exec(name);
  if (m && AGENT_NAME_PATTERN.test(m[1]!)) return { role: "worker", agent: m[1]! };
  return null;
}

/** Every identity a swarm of these agents needs, in registry order (pure). */
export function identitiesFor(agents: readonly string[]): Array<{ role: Role; agent?: string }> {
  return [
    { role: "orchestrator" },
    { role: "operator" },
    { role: "watcher" },
    ...[...new Set(agents)].map((agent) => ({ role: "worker" as const, agent })),
  ];
}

/**
 * Make sure `<state>/nats` holds a seed for every identity the agents need,
 * and a registry listing them all; returns the registry. Safe to run from
 * several processes at once: a seed file is created exclusively, and the
 * loser of a race reads the winner's.
 */
export async function ensureIdentities(
  stateDir: string,
  agents: readonly string[],
): Promise<IdentityRegistryFile> {
  const paths = natsStatePaths(stateDir);
  await privateDir(paths.dir);
  await privateDir(paths.credsDir);
  for (const want of identitiesFor(agents)) {
    const file = seedFilePath(stateDir, identityName(want.role, want.agent));
    const seed = new TextDecoder().decode(createUser().getSeed());
    try {
      await writeFile(file, `${seed}\n`, { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw unwritable(file, err);
      // Reused: still ours alone (a copy or an editor may have widened it).
      if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    }
  }
  return syncRegistry(stateDir);
}

/**
 * Rewrite the registry from the seed files (their public keys win) and the
 * records already in it; returns it.
 */
export async function syncRegistry(stateDir: string): Promise<IdentityRegistryFile> {
  const paths = natsStatePaths(stateDir);
  const byName = new Map<string, IdentityRecord>();
  for (const r of (await readIdentityRegistry(paths.registry))?.identities ?? []) {
    byName.set(r.name, r);
  }
  const files = (await readdir(paths.credsDir).catch(() => [] as string[]))
    .filter((f) => f.endsWith(".nk"))
    .sort();
  for (const f of files) {
    const name = f.slice(0, -3);
    const parsed = parseIdentityName(name);
    if (!parsed) continue; // not ours (someone's own nkey kept here): left alone
    const { publicKey } = await readSeedFile(path.join(paths.credsDir, f));
    byName.set(name, IdentityRecord.parse({ name, ...parsed, public_key: publicKey }));
  }
  const registry: IdentityRegistryFile = {
    version: 1,
    identities: sortRecords([...byName.values()]),
  };
  const text = `${JSON.stringify(registry, null, 2)}\n`;
  const old = await readFile(paths.registry, "utf8").catch(() => null);
  if (old !== text) {
    const tmp = `${paths.registry}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, paths.registry);
  }
  return registry;
}

/** The registry file, or null when there is none; a broken one is a BadInputError. */
export async function readIdentityRegistry(file: string): Promise<IdentityRegistryFile | null> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new InfrastructureError(
      `cannot read the identity registry ${file}: ${errorMessage(err)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`identity registry ${file} is not JSON: ${errorMessage(err)}`);
  }
  const r = IdentityRegistryFile.safeParse(json);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new BadInputError(`identity registry ${file} is invalid: ${what}`);
  }
  return r.data;
}

/**
 * An nkey seed file (the seed text, as `nk -gen user` and the nats CLI's
 * `--nkey` use it): its seed and public key. The message of a bad file names
 * the file, never its content.
 */
export async function readSeedFile(file: string): Promise<{ seed: Uint8Array; publicKey: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new InfrastructureError(
      `cannot read the nkey seed file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
      "NATS_NKEY names a file holding one user nkey seed (SU...), e.g. <state>/nats/creds/<role>.nk",
    );
  }
  const seedText = text.trim();
  try {
    if (!/^SU[A-Z2-7]+$/.test(seedText)) throw new Error("not a user seed");
    const seed = new TextEncoder().encode(seedText);
    return { seed, publicKey: fromSeed(seed).getPublicKey() };
  } catch {
    throw new BadInputError(
      `the nkey seed file ${file} does not hold a user nkey seed (one line starting with SU)`,
    );
  }
}

/** The identity whose seed is in `seedFile`, with its registry record. */
export async function loadIdentity(
  seedFile: string,
  registryFile: string,
): Promise<SigningIdentity> {
  const { seed, publicKey } = await readSeedFile(seedFile);
  const registry = await readIdentityRegistry(registryFile);
  const record = registry?.identities.find((r) => r.public_key === publicKey);
  if (!record) {
    throw new BadInputError(
      `the nkey in ${seedFile} (${publicKey}) is not in the identity registry ${registryFile}`,
    );
  }
  return { record, seed };
}

const ROLE_ORDER: Record<Role, number> = { orchestrator: 0, operator: 1, watcher: 2, worker: 3 };

function sortRecords(records: IdentityRecord[]): IdentityRecord[] {
  return records.sort(
    (a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.name.localeCompare(b.name),
  );
}

/** mkdir -p, then 0700 even when it existed (an older run may have made it wider). */
async function privateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (((await stat(dir)).mode & 0o077) !== 0) await chmod(dir, 0o700);
  } catch (err) {
    throw unwritable(dir, err);
  }
}

function unwritable(file: string, err: unknown): InfrastructureError {
  return new InfrastructureError(
    `cannot write the swarm's credentials at ${file}: ${errorMessage(err)}`,
    "set SWARM_STATE_DIR to a directory this user may write (default .swarm/state)",
    { cause: err },
  );
}
