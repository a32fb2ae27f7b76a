import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadInputError } from "../src/errors.ts";
import { TOOL_NAMES } from "../src/tools/agent-tools.ts";
import { DEFAULT_ROSTER_PATH, findAgent, loadRoster, parseRoster } from "../src/workers/roster.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-roster-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ROSTERS = path.resolve(path.dirname(DEFAULT_ROSTER_PATH));

describe("shipped rosters", () => {
  it.each([
    ["default.yaml", ["builder", "tester", "reviewer", "docs_writer", "devops"]],
    [
      "platform.yaml",
      [
        "cert_agent",
        "proxy_agent",
        "docker_agent",
        "env_agent",
        "database_agent",
        "cache_agent",
        "events_agent",
        "secrets_agent",
        "observability_agent",
        "rag_agent",
        "graph_agent",
      ],
    ],
    ["startup.yaml", ["product_manager", "sales", "engineer"]],
  ])("%s loads with its agents and real personas", async (file, names) => {
    const roster = await loadRoster(path.join(ROSTERS, file), {});
    expect(roster.agents.map((a) => a.name)).toEqual(names);
    for (const agent of roster.agents) {
      expect(agent.persona.length).toBeGreaterThan(300);
      expect(agent.description.length).toBeGreaterThan(60);
      expect(agent.tools.every((t) => (TOOL_NAMES as readonly string[]).includes(t))).toBe(true);
      // Personas tell the model to act through its tools.
      expect(agent.persona).toMatch(/write_file|run_shell/);
    }
  });

  it("the default is rosters/default.yaml, else SWARM_ROSTER", async () => {
    expect((await loadRoster(undefined, {})).agents[0]?.name).toBe("builder");
    const startup = await loadRoster(undefined, {
      SWARM_ROSTER: path.join(ROSTERS, "startup.yaml"),
    });
    expect(startup.agents[0]?.name).toBe("product_manager");
  });
});

describe("roster validation", () => {
  const agent = (over: Record<string, unknown> = {}) => ({
    name: "builder",
    description: "builds things",
    persona: "You build things with the tools.",
    tools: ["run_shell"],
    ...over,
  });

  it("accepts JSON, optional model and concurrency", async () => {
    const file = path.join(dir, "r.json");
    await writeFile(
      file,
      JSON.stringify({
        agents: [agent({ model: "ollama:qwen2.5:7b", concurrency: 2 }), agent({ name: "b2" })],
      }),
    );
    const roster = await loadRoster(file, {});
    expect(findAgent(roster, "builder")).toMatchObject({
      model: "ollama:qwen2.5:7b",
      concurrency: 2,
    });
    expect(() => findAgent(roster, "nobody")).toThrow(/not in the roster \(builder, b2\)/);
  });

  it.each([
    [{ agents: [agent({ name: "Bad Name" })] }, /agents\[0\] \(Bad Name\)\.name: agent names/],
    [
      { agents: [agent({ tools: ["rm_rf"] })] },
      /agents\[0\] \(builder\)\.tools\[0\]: must be one of run_shell/,
    ],
    [{ agents: [agent({ tools: ["run_shell", "run_shell"] })] }, /tools: lists a tool twice/],
    [
      { agents: [agent(), agent()] },
      /agents\[1\] \(builder\)\.name: duplicate agent name "builder"/,
    ],
    [{ agents: [agent({ model: "gpt4" })] }, /model: invalid model spec "gpt4"/],
    [{ agents: [agent({ persona: " " })] }, /persona: write the agent's system prompt/],
    [{ agents: [agent({ personna: "typo" })] }, /Unrecognized key.*personna/],
    [{ agents: [] }, /at least one agent/],
  ])("refuses %j naming the file and field", (data, message) => {
    const err = (() => {
      try {
        parseRoster(JSON.stringify(data), "team.yaml");
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(/^invalid roster team\.yaml: /);
    expect((err as Error).message).toMatch(message);
  });

  it("names the file for YAML syntax errors and missing files", async () => {
    expect(() => parseRoster("agents: [\n  - name: x\n bad", "broken.yaml")).toThrow(
      /roster broken\.yaml is not valid YAML/,
    );
    await expect(loadRoster(path.join(dir, "missing.yaml"), {})).rejects.toThrow(
      /missing\.yaml not found/,
    );
  });
});
