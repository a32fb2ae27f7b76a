/**
 * The critical path of a plan (pure): the chain of dependencies with the
 * largest total weight (a task's duration where known, else 1), which bounds
 * how soon the mission can end however many replicas run. Dependencies on
 * unknown tasks are ignored; a cycle (which plan validation refuses) cannot
 * loop: a task on the current chain is not followed again.
 */
export interface PathNode {
  id: string;
  depends_on: readonly string[];
  weight: number;
}

/** Task ids from the first task of the chain to its last; [] for no tasks. */
export function criticalPath(nodes: readonly PathNode[]): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const best = new Map<string, { total: number; prev: string | null }>();
  const visiting = new Set<string>();

  const solve = (id: string): number => {
    const known = best.get(id);
    if (known) return known.total;
    const node = byId.get(id)!;
    visiting.add(id);
    let prev: string | null = null;
    let longest = 0;
    for (const d of node.depends_on) {
      if (!byId.has(d) || visiting.has(d)) continue;
      const t = solve(d);
      if (t > longest || (t === longest && prev !== null && d < prev)) {
        longest = t;
        prev = d;
      }
    }
    visiting.delete(id);
    const total = longest + Math.max(0, node.weight);
    best.set(id, { total, prev });
    return total;
  };

  let end: string | null = null;
  let max = -1;
  for (const n of nodes) {
    const t = solve(n.id);
    if (t > max) {
      max = t;
      end = n.id;
    }
  }
  const path: string[] = [];
  for (let at = end; at !== null; at = best.get(at)!.prev) path.unshift(at);
  return path;
}
