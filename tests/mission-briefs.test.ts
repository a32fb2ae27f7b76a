import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseBrief } from "../src/orchestrator/brief.ts";
import { loadRoster } from "../src/workers/roster.ts";

const root = path.resolve(import.meta.dirname, "..");
/** Briefs that need a roster other than the default one say so in their text. */
const rosterFor: Record<string, string> = {
  "platform-deployment.md": "rosters/platform.yaml",
  "product-launch.md": "rosters/startup.yaml",
};

describe("shipped mission briefs", async () => {
  const files = (await readdir(path.join(root, "mission-briefs"))).filter((f) => f.endsWith(".md"));

  it("include the offline demo and the three model-driven briefs", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "demo-library.md",
        "flask-react-app.md",
        "platform-deployment.md",
        "product-launch.md",
      ]),
    );
  });

  for (const file of files) {
    it(`${file} parses against its roster and says what it needs`, async () => {
      const roster = await loadRoster(path.join(root, rosterFor[file] ?? "rosters/default.yaml"));
      const text = await readFile(path.join(root, "mission-briefs", file), "utf8");
      const brief = parseBrief(text, {
        sourcePath: file,
        knownAgents: roster.agents.map((a) => a.name),
      });
      expect(brief.title.length).toBeGreaterThan(0);
      expect(text).toMatch(/needs/i);
      if (file === "demo-library.md") {
        // The offline demo: explicit plan, 3 waves, >= 6 tasks over >= 3 agents, run + verify.
        const tasks = brief.plan!.waves.flatMap((w) => w.tasks);
        expect(brief.plan!.waves).toHaveLength(3);
        expect(tasks.length).toBeGreaterThanOrEqual(6);
        expect(new Set(tasks.map((t) => t.agent)).size).toBeGreaterThanOrEqual(3);
        expect(tasks.every((t) => t.run?.length && t.verify?.length)).toBe(true);
      } else if (file === "demo-git.md") {
        // The offline git demo: two parallel tasks, a third needing both, on the demo repository.
        expect(brief.workspace).toBe("./demo-git-repo");
        expect(brief.plan!.waves.map((w) => w.tasks.map((t) => t.id))).toEqual([
          ["greeting", "numbers"],
          ["summary"],
        ]);
        expect(brief.plan!.waves[1]!.tasks[0]!.depends_on).toEqual(["greeting", "numbers"]);
      } else {
        expect(brief.plan).toBeNull();
      }
    });
  }
});
