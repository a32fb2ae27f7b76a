import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir, access } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { buildCompiled, compiledEntry, sourceFingerprint } from "../../src/client/compiled.ts";

const run = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A tiny source tree shaped like src/: cli/main.ts importing a sibling module. */
async function tree() {
  const root = await mkdtemp(path.join(os.tmpdir(), "squad-compiled-"));
  dirs.push(root);
  const src = path.join(root, "src");
  await mkdir(path.join(src, "cli"), { recursive: true });
  await writeFile(
    path.join(src, "cli", "main.ts"),
    'import { greet } from "../greet.ts";\nconst who: string = "dist";\nprocess.stdout.write(greet(who));\n',
  );
  await writeFile(
    path.join(src, "greet.ts"),
    "export function greet(name: string): string {\n  return `hello ${name}`;\n}\n",
  );
  await writeFile(path.join(root, "package.json"), '{ "type": "module" }\n');
  return { src, dist: path.join(root, "dist") };
}

describe("compiled build (dist/)", () => {
  it("is used only while it matches the sources, and runs like them", async () => {
    const dirs = await tree();
    expect(await compiledEntry(dirs)).toBeNull(); // never built
    expect(await buildCompiled(dirs)).toBe("built");
    const entry = await compiledEntry(dirs);
    expect(entry).toBe(path.join(dirs.dist, "cli", "main.js"));
    const { stdout } = await run(process.execPath, [entry!]);
    expect(stdout).toBe("hello dist");
    expect(await readFile(path.join(dirs.dist, "cli", "main.js"), "utf8")).toContain(
      '"../greet.js"',
    );
    expect(await buildCompiled(dirs)).toBe("fresh");

    // An edit makes the build stale until it is rebuilt.
    await writeFile(
      path.join(dirs.src, "greet.ts"),
      "export function greet(name: string): string {\n  return `bye ${name}`;\n}\n",
    );
    expect(await compiledEntry(dirs)).toBeNull();
    expect(await buildCompiled(dirs)).toBe("built");
    expect((await run(process.execPath, [(await compiledEntry(dirs))!])).stdout).toBe("bye dist");
  });

  it("drops modules whose source is gone, and a removed file changes the fingerprint", async () => {
    const dirs = await tree();
    await writeFile(path.join(dirs.src, "extra.ts"), "export const x: number = 1;\n");
    await buildCompiled(dirs);
    await access(path.join(dirs.dist, "extra.js"));
    const before = await sourceFingerprint(dirs.src);
    await rm(path.join(dirs.src, "extra.ts"));
    expect(await sourceFingerprint(dirs.src)).not.toBe(before);
    expect(await compiledEntry(dirs)).toBeNull();
    await buildCompiled(dirs);
    await expect(access(path.join(dirs.dist, "extra.js"))).rejects.toThrow();
  });

  it("refuses a source it cannot parse, and the build stays unused", async () => {
    const dirs = await tree();
    await writeFile(path.join(dirs.src, "broken.ts"), "export const = ;\n");
    await expect(buildCompiled(dirs)).rejects.toThrow(/cannot compile src\/broken\.ts/);
    expect(await compiledEntry(dirs)).toBeNull();
  });
});
