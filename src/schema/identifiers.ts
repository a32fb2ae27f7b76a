import { z } from "zod";

/** Roster names appear in subjects (`squad.tasks.<agent>`) and durable names. */
export const AGENT_NAME_PATTERN = /^[a-z0-9_-]{1,64}$/;
export const AgentName = z
  .string()
  .regex(AGENT_NAME_PATTERN, "agent names are 1-64 characters of a-z, 0-9, '_' or '-'");
export type AgentName = z.infer<typeof AgentName>;

/**
 * Mission and task ids end up in KV keys (`<mission>.<task>.<attempt>`), file
 * names and message ids, so dots, slashes and spaces are kept out.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;
export const MissionId = z
  .string()
  .regex(ID_PATTERN, "mission ids are 1-80 characters of A-Z, a-z, 0-9, '_' or '-'");
export const TaskId = z
  .string()
  .regex(ID_PATTERN, "task ids are 1-80 characters of A-Z, a-z, 0-9, '_' or '-'");

export function isAgentName(s: string): boolean {
  return AGENT_NAME_PATTERN.test(s);
}

/** Throws a readable error when `name` can not be used as an agent name. */
export function assertAgentName(name: string): string {
  if (!AGENT_NAME_PATTERN.test(name)) {
    throw new Error(
      `invalid agent name ${JSON.stringify(name)}: use 1-64 characters of a-z, 0-9, '_' or '-'`,
    );
  }
  return name;
}

/** A git commit id (SHA-1, lower-case hex): the mission repository's commits. */
export const CommitId = z
  .string()
  .regex(/^[0-9a-f]{40}$/, "commit ids are 40 lower-case hexadecimal digits (a git SHA-1)");
export type CommitId = z.infer<typeof CommitId>;
