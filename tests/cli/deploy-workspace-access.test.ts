/**
 * Workers run every command as an unprivileged sandbox user, which must be
 * able to pass through the directories above the workspace. When it cannot
 * (a workspace under a mode-700 directory, such as a root-only home), the
 * launcher says so once, at start, with exit 2 and what to do, instead of
 * starting workers that would each refuse it.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, runSwarm } from "../helpers/swarm-process.ts";

describe.runIf(process.getuid?.() === 0)("swarm deploy and the sandbox user", () => {
  it("refuses a workspace the sandbox user cannot reach, before starting anything", async () => {
    const closed = await mkdtemp(path.join(os.tmpdir(), "squad-closed-")); // mode 700
    try {
      const workspace = path.join(closed, "ws");
      await mkdir(workspace);
      const r = await runSwarm(
        [
          "deploy",
          path.join(REPO_ROOT, "mission-briefs/demo-library.md"),
          "--workspace",
          workspace,
        ],
        {
          ...process.env,
          NATS_URL: "nats://127.0.0.1:1",
          SWARM_STATE_DIR: path.join(closed, "state"),
        },
        { timeoutMs: 60_000 },
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/the sandbox user \(uid \d+\) cannot reach the workspace/);
      expect(r.stderr).toMatch(/chmod o\+x /);
      // Nothing was started: no nats-server, no replica logs.
      expect(r.stderr).not.toMatch(/nats-server|restarting/);
    } finally {
      await rm(closed, { recursive: true, force: true });
    }
  }, 90_000);
});
