/**
 * `<state>/nats/server.json`: the nats-server a launcher (`swarm up`,
 * `deploy`) started for this state directory, so that other `swarm`
 * commands on the same machine, and the next launcher, find it without
 * settings. Written when the server is up, rewritten when the supervisor
 * restarts it (new pid), removed when the launcher stops it.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { z } from "zod";
import { natsStatePaths } from "./state-dir.ts";

export const LocalServerRecord = z.object({
  version: z.literal(1),
  url: z.string().min(1),
  port: z.number().int().positive(),
  /** The nats-server process (to tell our server from another one on the same port). */
  pid: z.number().int().positive(),
  /** The config file it runs with, and its JetStream store. */
  config: z.string(),
  store_dir: z.string(),
  /** "nkey": the generated authorization block; "none": started unauthenticated on request. */
  auth: z.enum(["nkey", "none"]),
  started_at: z.string(),
});
export type LocalServerRecord = z.infer<typeof LocalServerRecord>;

/** The record, or null when there is none or it is unreadable (a stale file is not an error). */
export async function readLocalServerRecord(stateDir: string): Promise<LocalServerRecord | null> {
  try {
    const text = await readFile(natsStatePaths(stateDir).serverRecord, "utf8");
    const r = LocalServerRecord.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export async function writeLocalServerRecord(
  stateDir: string,
  record: LocalServerRecord,
): Promise<void> {
  const file = natsStatePaths(stateDir).serverRecord;
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}

/** Remove the record if it still names the server of `pid` (another launcher may own it now). */
export async function removeLocalServerRecord(stateDir: string, pid: number): Promise<void> {
  const current = await readLocalServerRecord(stateDir);
  if (current && current.pid !== pid) return;
  await rm(natsStatePaths(stateDir).serverRecord, { force: true });
}

/** Is process `pid` alive (and ours to signal)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
