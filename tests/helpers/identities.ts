/**
 * A swarm's identities for tests: a fresh nkey per role, the registry file
 * and each seed in its own file, as the provisioning writes them. A test
 * that plays the attacker holds a seed deliberately (a stolen identity).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { createEventSigner, type EventSigner } from "../../src/bus/event-signing.ts";
import type { IdentityRecord, IdentityRegistryFile, Role } from "../../src/bus/identity.ts";

export interface TestIdentity {
  record: IdentityRecord;
  seed: Uint8Array;
  seedPath: string;
  signer: EventSigner;
}

export interface TestIdentities {
  registryPath: string;
  file: IdentityRegistryFile;
  get(name: string): TestIdentity;
  /** The environment a process of this identity is started with. */
  env(name: string): { SWARM_IDENTITIES: string; NATS_NKEY: string };
}

/** `names`: "orchestrator", "operator", "watcher", "worker-<agent>". */
export async function makeIdentities(
  dir: string,
  names: readonly string[],
): Promise<TestIdentities> {
  await mkdir(dir, { recursive: true });
  const byName = new Map<string, TestIdentity>();
  for (const name of names) {
    const kp = createUser();
    const worker = /^worker-(.+)$/.exec(name);
    const role: Role = worker ? "worker" : (name as Role);
    const record: IdentityRecord = {
      name,
      role,
      ...(worker ? { agent: worker[1]! } : {}),
      public_key: kp.getPublicKey(),
    };
    const seed = kp.getSeed();
    const seedPath = join(dir, `${name}.nk`);
    await writeFile(seedPath, new TextDecoder().decode(seed) + "\n", { mode: 0o600 });
    byName.set(name, { record, seed, seedPath, signer: createEventSigner({ record, seed }) });
  }
  const file: IdentityRegistryFile = {
    version: 1,
    identities: [...byName.values()].map((i) => i.record),
  };
  const registryPath = join(dir, "identities.json");
  await writeFile(registryPath, JSON.stringify(file, null, 2));
  const get = (name: string) => {
    const i = byName.get(name);
    if (!i) throw new Error(`no test identity ${name}`);
    return i;
  };
  return {
    registryPath,
    file,
    get,
    env: (name) => ({ SWARM_IDENTITIES: registryPath, NATS_NKEY: get(name).seedPath }),
  };
}
