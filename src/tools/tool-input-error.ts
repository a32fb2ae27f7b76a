/**
 * A tool was called with input it refuses (a path leaving the workspace, a
 * file too large, a missing file). The message is written for the model that
 * made the call: it says what was wrong and what to do instead. Agent tools
 * turn it into an error text for the model, never a crash of the agent.
 */
export class ToolInputError extends Error {
  override readonly name = "ToolInputError";
}
