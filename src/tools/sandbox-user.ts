/**
 * The unprivileged user that sandboxed work runs as. A worker running as
 * root drops to it before bwrap starts (root in a user namespace is still
 * root to the host's permission checks: see docs/security.md), and the
 * file tools hand what they create to it, so a task's shell can change the
 * files its own tools wrote. A worker that is not root runs its tasks as
 * itself (null here): it has nothing to drop.
 */
export interface SandboxUser {
  uid: number;
  gid: number;
}

/** `nobody:nogroup` unless SWARM_SANDBOX_UID / SWARM_SANDBOX_GID say otherwise. */
export const DEFAULT_SANDBOX_ID = 65534;

export function sandboxUser(env: NodeJS.ProcessEnv = process.env): SandboxUser | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const id = (name: string): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return DEFAULT_SANDBOX_ID;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) {
      throw new Error(
        `${name}=${JSON.stringify(raw)}: expected a positive integer uid/gid (not 0: that is root)`,
      );
    }
    return n;
  };
  return { uid: id("SWARM_SANDBOX_UID"), gid: id("SWARM_SANDBOX_GID") };
}
