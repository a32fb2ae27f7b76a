import path from "node:path";
import { Option, type Command } from "commander";
import { readEnv, type SwarmEnv } from "../config.ts";
import { BadInputError } from "../errors.ts";
import { ALLOW_WORKSPACE_FLAG } from "../orchestrator/workspace-seed.ts";

export interface CommonFlags {
  nats?: string;
  workspace?: string;
  roster?: string;
}

export interface Resolved {
  env: SwarmEnv;
  natsUrl: string;
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
    workspaceRoot: path.resolve(flags.workspace ?? env.SWARM_WORKSPACE),
    rosterPath: flags.roster ?? env.SWARM_ROSTER,
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
 * What every command passes to connectBus: the server(s), and the
 * credentials and inbox prefix of a restricted NATS user (nats.conf) from
 * NATS_USER / NATS_PASS / SWARM_NATS_INBOX_PREFIX, or `user:pass@` in the URL.
 */
export function natsConnectOptions(
  common: Pick<Resolved, "env" | "natsUrl">,
  name: string,
  servers = common.natsUrl,
) {
  return {
    servers,
    name,
    ...(common.env.NATS_USER ? { user: common.env.NATS_USER } : {}),
    ...(common.env.NATS_PASS ? { pass: common.env.NATS_PASS } : {}),
    ...(common.env.SWARM_NATS_INBOX_PREFIX
      ? { inboxPrefix: common.env.SWARM_NATS_INBOX_PREFIX }
      : {}),
  };
}
