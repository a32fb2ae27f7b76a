import { fileURLToPath } from "node:url";

/** Command and leading args that run this same CLI in a child process. */
export function selfCommand(): { command: string; args: string[] } {
  return {
    command: process.execPath,
    args: [fileURLToPath(new URL("./main.ts", import.meta.url))],
  };
}
