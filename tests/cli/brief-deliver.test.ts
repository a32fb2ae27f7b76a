import { describe, expect, it } from "vitest";
import { parseBrief } from "../../src/orchestrator/brief.ts";
import { BadInputError } from "../../src/errors.ts";

const brief = (front: string) => `---\n${front}\n---\n# Do it\n`;

describe("brief front matter deliver:", () => {
  it("deliver: { push: REMOTE } is kept", () => {
    expect(parseBrief(brief("workspace: ./app\ndeliver: { push: origin }")).deliver).toEqual({
      push: "origin",
    });
    expect(parseBrief(brief("title: x")).deliver).toBeUndefined();
  });

  it("refuses an unknown key, an empty remote and an option, naming the line", () => {
    const err = (front: string) => {
      try {
        parseBrief(brief(front));
      } catch (e) {
        expect(e).toBeInstanceOf(BadInputError);
        return (e as Error).message;
      }
      throw new Error("accepted");
    };
    expect(err("deliver:\n  pull: origin")).toMatch(
      /line 3: deliver: unknown key "pull" \(allowed: push\)/,
    );
    expect(err('deliver: { push: "" }')).toContain("the remote is empty");
    expect(err("deliver: { push: --mirror }")).toContain("not an option");
  });
});
