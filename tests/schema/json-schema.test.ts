import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jsonSchemaFiles } from "../../src/schema/json-schema.ts";
import { EVENT_TYPES } from "../../src/schema/index.ts";

const root = path.resolve(import.meta.dirname, "../..");

describe("checked-in JSON Schema", () => {
  it("matches the zod schemas (run `node scripts/export-schema.ts` when this fails)", async () => {
    const files = jsonSchemaFiles();
    // event, plan, task, task-result; one per event type; the mission view's two values.
    expect(Object.keys(files)).toHaveLength(4 + EVENT_TYPES.length + 2);
    for (const [name, text] of Object.entries(files)) {
      const onDisk = await readFile(path.join(root, "docs/schema", name), "utf8").catch(() => "");
      expect(onDisk, `docs/schema/${name} is stale`).toBe(text);
    }
  });
});
