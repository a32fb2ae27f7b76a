/**
 * docker-compose.yml's workers use the shell sandbox (issue 11: `none` is not
 * the compose default), with what bubblewrap needs from Docker and nothing
 * more. Structural: no container runtime on these machines (docs/security.md).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { REPO_ROOT } from "../helpers/swarm-process.ts";

interface Service {
  user?: string;
  privileged?: boolean;
  cap_add?: string[];
  security_opt?: string[];
  environment?: Record<string, string>;
}

const compose = YAML.parse(await readFile(path.join(REPO_ROOT, "docker-compose.yml"), "utf8"), {
  merge: true,
}) as { services: Record<string, Service> };
const workers = Object.entries(compose.services).filter(([name]) => name.startsWith("worker-"));

describe("the compose workers' sandbox", () => {
  it("is bwrap by default, asked for explicitly (a worker that can't have it refuses to start)", () => {
    expect(workers.length).toBeGreaterThan(0);
    for (const [name, s] of workers) {
      expect(s.environment?.SWARM_SANDBOX, name).toBe("${SWARM_SANDBOX:-bwrap}");
    }
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.environment?.SWARM_SANDBOX ?? "", name).not.toMatch(/none/);
    }
  });

  it("gets what bwrap needs (user namespaces, mounts, an unmasked /proc), no capabilities, not privileged", () => {
    for (const [name, s] of workers) {
      expect(s.security_opt, name).toEqual([
        "seccomp=unconfined",
        "apparmor=unconfined",
        "systempaths=unconfined",
      ]);
      expect(s.privileged, name).toBeUndefined();
      expect(s.cap_add, name).toBeUndefined();
      // Root only to drop every command to the sandbox uid (setpriv).
      expect(s.user, name).toBe("root");
    }
  });
});
