/** `swarm … | head`: the reader closing the pipe early ends the output quietly. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { CLI_ENTRY } from "../helpers/swarm-process.ts";

describe("a closed stdout", () => {
  it("exits 0 without an EPIPE stack when the reader goes away", async () => {
    const child = spawn(process.execPath, [CLI_ENTRY, "--help"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    // Like `head -0`: the pipe is closed before the help text is written.
    child.stdout.destroy();
    const [code] = (await once(child, "exit")) as [number | null];
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  }, 30_000);
});
