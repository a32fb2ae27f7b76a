/**
 * `swarm completion bash`, sourced in a real bash, completes subcommands,
 * their options and the shells of `completion` itself; the zsh script is made
 * from the same program. (zsh is not installed here: its script is checked
 * for what it lists, not run.)
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_NAMES } from "../../src/cli/commands.ts";
import { runSwarm } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
let dir: string;
let bashScript: string;
let zshScript: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "swarm-completion-"));
  const bash = await runSwarm(["completion", "bash"], process.env);
  expect(bash.code, bash.stderr).toBe(0);
  bashScript = path.join(dir, "swarm.bash");
  await writeFile(bashScript, bash.stdout);
  const zsh = await runSwarm(["completion", "zsh"], process.env);
  expect(zsh.code, zsh.stderr).toBe(0);
  zshScript = zsh.stdout;
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/** What bash offers for the command line `words` (the last word is the one being completed). */
async function complete(...words: string[]): Promise<string[]> {
  const line = words.map((w) => `'${w}'`).join(" ");
  const { stdout } = await run("bash", [
    "--norc",
    "-c",
    `source "$1"; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); ` +
      `_swarm_completion; printf '%s\\n' "\${COMPREPLY[@]}"`,
    "bash",
    bashScript,
  ]);
  return stdout.split("\n").filter(Boolean);
}

describe("swarm completion", () => {
  it("bash: completes every subcommand, from a prefix too", async () => {
    expect(await complete("swarm", "")).toEqual(expect.arrayContaining(COMMAND_NAMES));
    expect(await complete("swarm", "st")).toEqual(["status"]);
    expect(await complete("swarm", "--json", "su")).toEqual(["submit"]);
  });

  it("bash: completes a subcommand's options and the values it knows", async () => {
    expect(await complete("swarm", "deploy", "--re")).toEqual(["--replicas"]);
    expect(await complete("swarm", "watch", "--mi")).toEqual(["--mission"]);
    expect(await complete("swarm", "completion", "")).toEqual(["bash", "zsh"]);
    // A flag that takes a value offers nothing of its own: bash falls back to files.
    expect(await complete("swarm", "deploy", "--replicas", "")).toEqual([]);
  });

  it("zsh: a #compdef script listing every subcommand with its description", () => {
    expect(zshScript.startsWith("#compdef swarm\n")).toBe(true);
    for (const name of COMMAND_NAMES) expect(zshScript).toMatch(new RegExp(`'${name}:[^']+'`));
    expect(zshScript).toContain("--replicas'[replicas of each agent]:value: '");
    expect(zshScript).toContain("--roster'[roster file (YAML or JSON)]:path:_files'");
  });

  it("refuses a shell it does not know, with exit 2", async () => {
    const r = await runSwarm(["completion", "fish"], process.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are bash, zsh/);
  });
});
