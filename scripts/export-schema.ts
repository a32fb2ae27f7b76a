// Writes the JSON Schema of the contract (generated from the zod schemas in
// src/schema) into docs/schema/. `--check` exits 1 when the checked-in copy is stale.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { jsonSchemaFiles } from "../src/schema/json-schema.ts";

const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../docs/schema");
const check = process.argv.includes("--check");
const files = jsonSchemaFiles();
let stale = 0;
if (!check) await mkdir(outDir, { recursive: true });
for (const [name, text] of Object.entries(files)) {
  const file = path.join(outDir, name);
  if (!check) await mkdir(path.dirname(file), { recursive: true });
  if (check) {
    const current = await readFile(file, "utf8").catch(() => null);
    if (current !== text) {
      console.error(`stale: docs/schema/${name} (run: node scripts/export-schema.ts)`);
      stale++;
    }
  } else {
    await writeFile(file, text);
    console.log(`wrote docs/schema/${name}`);
  }
}
process.exitCode = stale ? 1 : 0;
