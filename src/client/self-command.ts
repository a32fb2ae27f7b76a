import { fileURLToPath } from "node:url";
import { compiledEntry } from "./compiled.ts";

/**
 * Command and leading args that run this same CLI in a child process: the
 * compiled build in dist/ when it matches the sources (no type stripper in
 * the child: about 25 MB less per replica), else the sources. A process that
 * runs compiled already starts its children from the same build.
 */
export async function selfCommand(): Promise<{ command: string; args: string[] }> {
  const own = import.meta.url.endsWith(".js")
    ? fileURLToPath(new URL("../cli/main.js", import.meta.url))
    : ((await compiledEntry()) ?? fileURLToPath(new URL("../cli/main.ts", import.meta.url)));
  return { command: process.execPath, args: [own] };
}
