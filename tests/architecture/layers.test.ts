/**
 * The layer rules of eslint.config.js (docs/architecture.md), run through
 * ESLint's Node API on code given a virtual path inside src/: an upward
 * import fails, a downward one passes, and the mission machine may not touch
 * clocks, randomness, I/O or NATS. The tree itself passes: `eslint .` in
 * scripts/test lints every file with the same rules.
 */
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/swarm-process.ts";

const eslint = new ESLint({ cwd: REPO_ROOT });

/** The messages of the architecture rules for `code` as if it were the file `file`. */
async function violations(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${REPO_ROOT}/${file}` });
  return result!.messages
    .filter((m) => m.ruleId?.startsWith("no-restricted-") || m.fatal)
    .map((m) => `${m.ruleId}: ${m.message}`);
}

describe("layers (eslint no-restricted-imports)", () => {
  it.each([
    ["src/schema/x.ts", "../cli/options.ts"],
    ["src/schema/x.ts", "../bus/index.ts"],
    ["src/bus/x.ts", "../workers/roster.ts"],
    ["src/tools/x.ts", "../llm/model-spec.ts"],
    ["src/llm/x.ts", "../tools/truncate.ts"],
    ["src/workers/x.ts", "../orchestrator/brief.ts"],
    ["src/orchestrator/x.ts", "../client/submission.ts"],
    ["src/client/x.ts", "../cli/options.ts"],
    ["src/bench/x.ts", "../cli/options.ts"],
    ["src/bench/x.ts", "../chaos/prng.ts"],
    ["src/chaos/x.ts", "../bench/stats.ts"],
    ["src/x.ts", "./schema/index.ts"],
    ["src/cli/commands/x.ts", "../../chaos/prng.ts"],
    ["src/dashboard/x.ts", "../cli/watch-filter.ts"],
    ["src/dashboard/x.ts", "../workers/roster.ts"],
    ["src/dashboard/x.ts", "../orchestrator/brief.ts"],
    ["src/client/x.ts", "../dashboard/dashboard.ts"],
    ["src/telemetry/x.ts", "../bus/index.ts"],
    ["src/telemetry/x.ts", "../llm/chat-model.ts"],
    ["src/workspace/x.ts", "../workers/roster.ts"],
    ["src/workspace/x.ts", "../llm/model-spec.ts"],
    ["src/tools/x.ts", "../workspace/mission-repo.ts"],
  ])("%s may not import %s", async (file, from) => {
    const found = await violations(file, `import { x } from "${from}";\nexport const y = x;\n`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^no-restricted-imports: .*docs\/architecture\.md|base under every/);
  });

  it.each([
    ["src/bus/x.ts", "../schema/index.ts"],
    ["src/workers/x.ts", "../tools/truncate.ts"],
    ["src/orchestrator/x.ts", "../workers/roster.ts"],
    ["src/client/x.ts", "../orchestrator/brief.ts"],
    ["src/cli/commands/x.ts", "../../client/submission.ts"],
    ["src/cli/commands/x.ts", "../../bench/runner.ts"],
    ["src/bench/x.ts", "../client/submission.ts"],
    ["src/chaos/x.ts", "../bus/index.ts"],
    ["src/schema/x.ts", "../errors.ts"],
    ["src/dashboard/x.ts", "../client/audit.ts"],
    ["src/dashboard/x.ts", "../bus/index.ts"],
    ["src/cli/commands/x.ts", "../../dashboard/dashboard.ts"],
    ["src/telemetry/x.ts", "../schema/index.ts"],
    ["src/bus/x.ts", "../telemetry/index.ts"],
    ["src/llm/x.ts", "../telemetry/index.ts"],
    ["src/tools/x.ts", "../telemetry/index.ts"],
    ["src/workspace/x.ts", "../tools/sandbox.ts"],
    ["src/workspace/x.ts", "../bus/connect.ts"],
    ["src/workers/x.ts", "../workspace/mission-repo.ts"],
    ["src/orchestrator/x.ts", "../workspace/mission-repo.ts"],
  ])("%s may import %s", async (file, from) => {
    const found = await violations(file, `import { x } from "${from}";\nexport const y = x;\n`);
    expect(found).toEqual([]);
  });
});

describe("the mission machine stays deterministic", () => {
  const machine = "src/orchestrator/mission-machine.ts";

  it.each([
    ["a clock", "export const t = Date.now();"],
    ["the date of now", "export const t = new Date();"],
    ["randomness", "export const r = Math.random();"],
    ["a timer", "setTimeout(() => undefined, 10);"],
    ["the process", "export const e = process.env;"],
    ["I/O", 'import { readFile } from "node:fs/promises";\nexport const f = readFile;'],
    ["NATS", 'import { connect } from "@nats-io/transport-node";\nexport const c = connect;'],
    [
      "the bus",
      'import { createPublisher } from "../bus/index.ts";\nexport const p = createPublisher;',
    ],
    ["the log", 'import { silentLogger } from "../log.ts";\nexport const l = silentLogger;'],
  ])("may not use %s", async (_what, code) => {
    expect(await violations(machine, code)).toHaveLength(1);
  });

  it("may turn a given time into a timestamp, and import the wire schema", async () => {
    const code =
      'import type { Task } from "../schema/task.ts";\n' +
      "export const at = (now: number, t: Task) => [new Date(now).toISOString(), t.id];\n";
    expect(await violations(machine, code)).toEqual([]);
  });

  it("the shell around it may use the clock", async () => {
    expect(
      await violations("src/orchestrator/mission-runner.ts", "export const t = Date.now();"),
    ).toEqual([]);
  });
});

describe("the tree", () => {
  it("passes the layer and purity rules", { timeout: 300_000 }, async () => {
    const results = await eslint.lintFiles(["src"]);
    const broken = results.flatMap((r) =>
      r.messages
        .filter((m) => m.ruleId?.startsWith("no-restricted-"))
        .map((m) => `${r.filePath}:${m.line} ${m.message}`),
    );
    expect(broken).toEqual([]);
    expect(results.length).toBeGreaterThan(150);
  });
});
