/**
 * Colour only for a person at a terminal: stdout is a TTY and NO_COLOR is
 * unset or empty (https://no-color.org). Pipes, files and `--json` get plain text.
 */
export function useColor(
  stream: { isTTY?: boolean } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}
