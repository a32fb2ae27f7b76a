/**
 * A replica's life, as one value: starting (sandbox, bus, status watch) →
 * online (pulling) → draining (no more pulls; in-flight attempts may
 * finish until the drain time runs out, then they are aborted and handed
 * back) → stopped (agent_offline said). Pure transitions; the replica keeps
 * the current value.
 */
export type ReplicaPhase =
  | { phase: "starting" }
  | { phase: "online"; since: number }
  | { phase: "draining"; since: number; reason: string; expired: boolean }
  | { phase: "stopped"; reason: string };

export type LifecycleEvent =
  | { type: "online"; now: number }
  | { type: "stop"; now: number; reason: string }
  | { type: "drain_expired" }
  | { type: "drained" };

/** The next phase; an event that does not apply in a phase leaves it as it is. */
export function nextPhase(p: ReplicaPhase, e: LifecycleEvent): ReplicaPhase {
  switch (e.type) {
    case "online":
      return p.phase === "starting" ? { phase: "online", since: e.now } : p;
    case "stop":
      return p.phase === "starting" || p.phase === "online"
        ? { phase: "draining", since: e.now, reason: e.reason, expired: false }
        : p;
    case "drain_expired":
      return p.phase === "draining" ? { ...p, expired: true } : p;
    case "drained":
      return p.phase === "draining" ? { phase: "stopped", reason: p.reason } : p;
  }
}

/** In-flight attempts must be aborted now ("drain"): the drain time ran out. */
export function mustHandBack(p: ReplicaPhase): boolean {
  return p.phase === "draining" && p.expired;
}
