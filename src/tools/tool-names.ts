// Kept apart from agent-tools.ts so the roster can check names without loading LangChain.
/** The contract's tool names; transcripts and prompts rely on them. */
export const TOOL_NAMES = [
  "run_shell",
  "read_file",
  "write_file",
  "list_files",
  "search_files",
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

export function isToolName(s: string): s is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(s);
}
