#!/usr/bin/env node
// The `swarm` bin. From a checkout it runs the TypeScript sources (Node's type
// stripping); an installed package ships only the compiled build in dist/
// (Node never strips types under node_modules), so it runs that.
import { existsSync } from "node:fs";
import { URL } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `swarm: needs Node >= 22.18 (this is ${process.version}); install Node 24 LTS\n`,
  );
  process.exit(3);
}
const sources = new URL("../src/cli/main.ts", import.meta.url);
const fromSources = existsSync(sources) && !sources.pathname.includes("/node_modules/");
await import(fromSources ? sources.href : new URL("../dist/cli/main.js", import.meta.url).href);
