import tty from "node:tty";

/**
 * Colour for a person: Node's own colour detection (`tty.WriteStream#hasColors`),
 * so FORCE_COLOR, NO_COLOR (https://no-color.org), NODE_DISABLE_COLORS and
 * TERM=dumb mean here what they mean to every Node program. Without
 * FORCE_COLOR, pipes, files and `--json` get plain text.
 */
export function useColor(
  stream: { isTTY?: boolean } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (stream.isTTY !== true && env.FORCE_COLOR === undefined) return false;
  // hasColors reads only the environment (and the platform), never the stream itself.
  return tty.WriteStream.prototype.hasColors.call(stream, 16, env);
}
