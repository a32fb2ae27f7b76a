/**
 * Where a brief's `workspace:` may point: the pure rule (table), and the
 * resolution on real directories and symlinks that feeds it.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadInputError } from "../../src/errors.ts";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { resolveWorkspaceSeed, workspaceSeedPlace } from "../../src/orchestrator/workspace-seed.ts";

describe("workspaceSeedPlace", () => {
  const rows: Array<[string, string, string, string[], ReturnType<typeof workspaceSeedPlace>]> = [
    ["the brief's own directory", "/b", "/b", [], "brief"],
    ["below the brief's directory", "/b/project/src", "/b", [], "brief"],
    ["a sibling of the brief's directory", "/other", "/b", [], null],
    ["a name that only starts like it", "/b-2/project", "/b", [], null],
    ["the parent of the brief's directory", "/", "/b", [], null],
    ["/etc", "/etc", "/b", [], null],
    ["/etc/ssl", "/etc/ssl", "/b", [], null],
    ["a directory named on the command line", "/etc/ssl", "/b", ["/etc/ssl"], "allowed"],
    [
      "inside a directory named on the command line",
      "/srv/repo/sub",
      "/b",
      ["/srv/repo"],
      "allowed",
    ],
    ["another directory than the one named", "/etc/ssl", "/b", ["/srv/repo"], null],
    ["anything, for a brief in / (no tree to judge by)", "/etc", "/", [], null],
    ["…unless named", "/etc", "/", ["/etc"], "allowed"],
  ];
  it.each(rows)("%s", (_what, seed, briefDir, allowed, expected) => {
    expect(workspaceSeedPlace(seed, briefDir, allowed)).toBe(expected);
  });
});

describe("resolveWorkspaceSeed", () => {
  let dir: string;
  let briefPath: string;
  let outside: string;

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), "squad-seedrule-")));
    await mkdir(path.join(dir, "briefs/project/src"), { recursive: true });
    outside = path.join(dir, "elsewhere");
    await mkdir(outside);
    await writeFile(path.join(outside, "id_rsa"), "PRIVATE KEY\n");
    await symlink(outside, path.join(dir, "briefs/escape"));
    await symlink(path.join(dir, "briefs/project"), path.join(dir, "briefs/alias"));
    briefPath = path.join(dir, "briefs/brief.md");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const seedOf = (workspace: string, allowed?: string[]) =>
    resolveWorkspaceSeed(
      parseBrief(`---\ntitle: t\nworkspace: ${JSON.stringify(workspace)}\n---\n# t\n`),
      briefPath,
      allowed ? { allowed } : {},
    );

  it("takes a directory inside the brief's tree, symlinks resolved", async () => {
    expect(await seedOf("project")).toBe(path.join(dir, "briefs/project"));
    expect(await seedOf("./alias/src")).toBe(path.join(dir, "briefs/project/src"));
  });

  it.each([
    ["../../../root/x", /not a directory|outside the brief's directory/],
    ["/etc", /outside the brief's directory.*--allow-workspace \/etc$/s],
    ["/etc/ssl", /outside the brief's directory.*--allow-workspace \/etc\/ssl$/s],
    ["/", /outside the brief's directory/],
    ["../elsewhere", /outside the brief's directory/],
    ["escape", /escape.*really .*elsewhere.*outside the brief's directory/s],
  ])("refuses workspace: %s with exit 2 and a hint naming the flag", async (ws, message) => {
    const err = await seedOf(ws).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as BadInputError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
  });

  it("takes a directory outside when the submitter names it (or one above it)", async () => {
    expect(await seedOf("escape", [outside])).toBe(outside);
    expect(await seedOf("/etc/ssl", ["/etc"])).toBe(await realpath("/etc/ssl"));
    await expect(seedOf("/etc/ssl", [path.join(dir, "briefs")])).rejects.toThrow(
      /--allow-workspace/,
    );
    await expect(seedOf("project", [path.join(dir, "nope")])).rejects.toThrow(
      /--allow-workspace .*nope: not a directory/,
    );
  });
});
