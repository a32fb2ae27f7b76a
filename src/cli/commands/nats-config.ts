import { chmod, copyFile, mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { Option, type Command } from "commander";
import { ensureIdentities, readIdentityRegistry } from "../../bus/identity-store.ts";
import type { IdentityRegistryFile } from "../../bus/identity.ts";
import { renderAuthorizationBlock } from "../../bus/nats-auth-block.ts";
import { inboxPrefixFor } from "../../bus/nats-permissions.ts";
import { natsStatePaths, seedFilePath, stateDirOf } from "../../bus/state-dir.ts";
import { BadInputError } from "../../errors.ts";
import { loadRoster } from "../../workers/roster.ts";

interface NatsConfigFlags {
  roster?: string;
  state?: string;
  generate?: boolean;
  out?: string;
  export?: string;
  json?: boolean;
}

export function registerNatsConfigCommand(program: Command): void {
  program
    .command("nats-config")
    .description(
      "print the nats-server authorization block of a roster: one nkey user per role " +
        "(orchestrator, operator, watcher, worker-<agent>) with its permissions; generates the " +
        "identities it lacks in the state directory",
    )
    .addOption(new Option("--roster <file>", "roster file (YAML or JSON)").env("SWARM_ROSTER"))
    .addOption(
      new Option("--state <dir>", "the swarm's state directory (default .swarm/state)").env(
        "SWARM_STATE_DIR",
      ),
    )
    .option("--generate", "generate the missing identities (the default)")
    .option("--no-generate", "only read the registry: exit 2 when an identity is missing")
    .option("--out <file>", "write the block to this file instead of stdout")
    .option(
      "--export <dir>",
      "also copy each identity's seed to <dir>/<name>/seed.nk (one directory per identity, " +
        "e.g. one volume per container)",
    )
    .option("--json", "print { state_dir, identities, authorization } as one JSON object")
    .addHelpText(
      "after",
      `
Seeds: <state>/nats/creds/<name>.nk (0600); registry: <state>/nats/identities.json.
Existing identities are kept; agents added to the roster get theirs. Give each process only
its own seed (NATS_NKEY=<seed file>); workers also need SWARM_NATS_INBOX_PREFIX=_INBOX_<agent>.

Examples:
  $ swarm nats-config --roster rosters/default.yaml > authorization.conf
  $ swarm nats-config --state /state --out /auth/authorization.conf --export /creds`,
    )
    .action(async (flags: NatsConfigFlags) => {
      const roster = await loadRoster(flags.roster);
      const agents = roster.agents.map((a) => a.name);
      const stateDir = flags.state ? path.resolve(flags.state) : stateDirOf();
      const registry =
        flags.generate === false
          ? await registryWithout(stateDir, agents)
          : await ensureIdentities(stateDir, agents);
      const block = renderAuthorizationBlock(registry);
      if (flags.export) await exportSeeds(stateDir, registry, path.resolve(flags.export));
      if (flags.out) {
        const tmp = `${flags.out}.${process.pid}.tmp`;
        await mkdir(path.dirname(path.resolve(flags.out)), { recursive: true });
        await writeFile(tmp, block, { mode: 0o644 });
        await rename(tmp, flags.out);
      }
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            state_dir: stateDir,
            identities: registry.identities.map((r) => ({
              ...r,
              seed_file: seedFilePath(stateDir, r.name),
              inbox_prefix: inboxPrefixFor(r) ?? "_INBOX",
            })),
            authorization: block,
          })}\n`,
        );
      } else if (!flags.out) {
        process.stdout.write(block);
      }
    });
}

/** The registry as it is, or a BadInputError naming what `--no-generate` found missing. */
async function registryWithout(
  stateDir: string,
  agents: readonly string[],
): Promise<IdentityRegistryFile> {
  const file = natsStatePaths(stateDir).registry;
  const registry = await readIdentityRegistry(file);
  const have = new Set(registry?.identities.map((r) => r.name) ?? []);
  const missing = ["orchestrator", "operator", "watcher", ...agents.map((a) => `worker-${a}`)]
    .filter((n) => !have.has(n))
    .join(", ");
  if (!registry || missing) {
    throw new BadInputError(
      `${file} lacks identities for ${missing}: run \`swarm nats-config --generate\` to create them`,
    );
  }
  return registry;
}

/** `<dir>/<name>/seed.nk` for every identity whose seed is here (0700 dirs, 0600 files). */
async function exportSeeds(
  stateDir: string,
  registry: IdentityRegistryFile,
  dir: string,
): Promise<void> {
  for (const r of registry.identities) {
    const to = path.join(dir, r.name);
    await mkdir(to, { recursive: true, mode: 0o700 });
    await chmod(to, 0o700); // a mounted volume's root keeps its own mode otherwise
    const file = path.join(to, "seed.nk");
    try {
      await copyFile(seedFilePath(stateDir, r.name), file);
    } catch (err) {
      // A public-only record (its seed lives on another machine) has nothing to export.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    await chmod(file, 0o600);
  }
}
