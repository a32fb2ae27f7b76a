/**
 * Reads V8 CPU profiles (`node --cpu-prof`) and says where the time went:
 * self time by where the code lives (a package, a file of ours, Node's
 * internals, the garbage collector), and the hottest functions. Pure apart
 * from `readCpuProfiles`.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

const CpuProfile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({
        functionName: z.string(),
        url: z.string(),
        lineNumber: z.number(),
      }),
      children: z.array(z.number()).optional(),
    }),
  ),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
export type CpuProfile = z.infer<typeof CpuProfile>;

export interface ProfileShare {
  name: string;
  /** Self time in ms. */
  ms: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  /** Sampled wall time, ms. */
  totalMs: number;
  /** Time not idle, ms. */
  busyMs: number;
  byPlace: ProfileShare[];
  byFunction: ProfileShare[];
  /** Our own functions (src/) by inclusive time: what they and everything they call cost. */
  ownInclusive: ProfileShare[];
}

/** Where a script URL lives: "zod", "@nats-io/jetstream", "src/orchestrator/mission-machine.ts", "node:internal/…". */
export function placeOf(url: string, functionName: string): string {
  if (!url) {
    // (garbage collector), (program), (idle), (root): V8's own entries.
    return functionName.startsWith("(") ? functionName : "(native)";
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const src = url.indexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  if (url.startsWith("node:")) {
    const parts = url.split("/");
    return parts.slice(0, 2).join("/");
  }
  return url.replace(/^file:\/\//, "");
}

export function summarizeProfile(profile: CpuProfile, top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const place = new Map<string, number>();
  const fn = new Map<string, number>();
  const own = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle += dt;
      return;
    }
    const p = placeOf(url, functionName);
    place.set(p, (place.get(p) ?? 0) + dt);
    const label = (name: string, where: string, line: number, hasUrl: boolean) =>
      `${name || "(anonymous)"} ${where}${hasUrl ? `:${line + 1}` : ""}`;
    const f = label(functionName, p, lineNumber, url !== "");
    fn.set(f, (fn.get(f) ?? 0) + dt);
    // Inclusive: every distinct function of ours on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame) break;
      const where = placeOf(frame.url, frame.functionName);
      if (!where.startsWith("src/")) continue;
      const key = label(frame.functionName, where, frame.lineNumber, true);
      if (seen.has(key)) continue;
      seen.add(key);
      own.set(key, (own.get(key) ?? 0) + dt);
    }
  });
  const busy = total - idle;
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    totalMs: total,
    busyMs: busy,
    byPlace: rank(place),
    byFunction: rank(fn),
    ownInclusive: rank(own),
  };
}

/** Sums several profiles (e.g. of every replica) into one summary. */
export function mergeSummaries(list: ProfileSummary[], top = 12): ProfileSummary {
  const add = (key: "byPlace" | "byFunction" | "ownInclusive") => {
    const m = new Map<string, number>();
    for (const s of list) for (const x of s[key]) m.set(x.name, (m.get(x.name) ?? 0) + x.ms);
    return m;
  };
  const busy = list.reduce((a, s) => a + s.busyMs, 0);
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    totalMs: list.reduce((a, s) => a + s.totalMs, 0),
    busyMs: busy,
    byPlace: rank(add("byPlace")),
    byFunction: rank(add("byFunction")),
    ownInclusive: rank(add("ownInclusive")),
  };
}

/** Every `.cpuprofile` in a directory, summarized and merged; null when there is none. */
export async function readCpuProfiles(dir: string, top = 12): Promise<ProfileSummary | null> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) =>
    f.endsWith(".cpuprofile"),
  );
  if (!files.length) return null;
  const summaries = await Promise.all(
    files.map(async (f) => {
      const parsed = CpuProfile.parse(JSON.parse(await readFile(path.join(dir, f), "utf8")));
      // Merge keeps more than `top` per profile so the merged ranking is right.
      return summarizeProfile(parsed, 200);
    }),
  );
  return mergeSummaries(summaries, top);
}

/** One line for the docs: "zod 31%, src/orchestrator/mission-machine.ts 22%, …". */
export function describeShares(shares: ProfileShare[], n = 6): string {
  return shares
    .slice(0, n)
    .map((s) => `${s.name} ${(s.share * 100).toFixed(0)}%`)
    .join(", ");
}
