/**
 * The header of a git bundle (v2 or v3): the commits it needs
 * (prerequisites, `-<id>` lines) and the refs it carries (`<id> <ref>`),
 * up to the blank line before the pack. Pure.
 */
export interface BundleHeader {
  prerequisites: string[];
  refs: { commit: string; ref: string }[];
}

const MAX_HEADER = 1024 * 1024;

export function parseBundleHeader(bytes: Uint8Array): BundleHeader {
  const end = Math.min(bytes.byteLength, MAX_HEADER);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString("latin1");
  const stop = text.indexOf("\n\n");
  if (stop < 0) throw new Error("not a git bundle: no end of header");
  const lines = text.slice(0, stop).split("\n");
  const signature = lines.shift();
  if (signature !== "# v2 git bundle" && signature !== "# v3 git bundle") {
    throw new Error(`not a git bundle: ${JSON.stringify(signature?.slice(0, 40))}`);
  }
  const header: BundleHeader = { prerequisites: [], refs: [] };
  for (const line of lines) {
    if (line.startsWith("@")) continue; // v3 capabilities
    const pre = /^-([0-9a-f]{40})(?: .*)?$/.exec(line);
    if (pre) {
      header.prerequisites.push(pre[1]!);
      continue;
    }
    const ref = /^([0-9a-f]{40}) (\S+)$/.exec(line);
    if (!ref) throw new Error(`not a git bundle header line: ${JSON.stringify(line.slice(0, 80))}`);
    header.refs.push({ commit: ref[1]!, ref: ref[2]! });
  }
  return header;
}

/** A v2 bundle header for `h` (what `git bundle create` writes before the pack). Pure. */
export function formatBundleHeader(h: BundleHeader): string {
  return (
    "# v2 git bundle\n" +
    h.prerequisites.map((p) => `-${p}\n`).join("") +
    h.refs.map((r) => `${r.commit} ${r.ref}\n`).join("") +
    "\n"
  );
}
