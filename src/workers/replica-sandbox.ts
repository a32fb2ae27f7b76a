import { BadInputError } from "../errors.ts";
import { SandboxMode, probeBwrap, resolveSandbox, sandboxUnavailable } from "../tools/sandbox.ts";
import { sandboxUser } from "../tools/sandbox-user.ts";
import type { RosterAgent } from "./roster.ts";

/** Which sandbox the agent asks for, and who asked: the roster entry, else SWARM_SANDBOX. */
export function sandboxRequest(
  agent: RosterAgent,
  env: NodeJS.ProcessEnv,
): { agent: string; requested: SandboxMode | undefined; requestedBy: string; bwrapBin?: string } {
  const fromEnv = env.SWARM_SANDBOX?.trim();
  const machine = fromEnv ? SandboxMode.safeParse(fromEnv) : null;
  if (machine && !machine.success) {
    throw new BadInputError(`SWARM_SANDBOX must be bwrap or none, got ${JSON.stringify(fromEnv)}`);
  }
  const bin = env.SWARM_BWRAP_BIN?.trim();
  return {
    agent: agent.name,
    requested: agent.sandbox ?? machine?.data,
    requestedBy: agent.sandbox ? "the roster" : "SWARM_SANDBOX",
    ...(bin ? { bwrapBin: bin } : {}),
  };
}

/**
 * Fails (BadInputError) when the agent asks for a sandbox this machine can't
 * give, without touching NATS: `swarm worker` calls it before connecting.
 */
export async function checkSandbox(agent: RosterAgent, env: NodeJS.ProcessEnv): Promise<void> {
  const req = sandboxRequest(agent, env);
  const r = resolveSandbox(req.requested, await probeBwrap(req.bwrapBin, sandboxUser(env)));
  if ("error" in r) throw sandboxUnavailable(req.agent, req.requestedBy, r.error);
}
