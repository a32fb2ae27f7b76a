/**
 * The process's Prometheus metrics (prom-client), one registry per process.
 * Callers record through `metrics.*` at any time; prom-client itself is
 * loaded only when something serves /metrics (`enableMetrics`, called by
 * the health server): until then observations wait in a bounded queue, so
 * a process nobody scrapes loads nothing and pays a push per observation.
 *
 * Names (docs/operations.md): squad_tasks_total{agent,outcome},
 * squad_task_duration_seconds{agent,outcome}, squad_model_tokens_total
 * {agent,model,direction}, squad_tasks_in_flight{agent},
 * squad_task_redeliveries_total{agent}, squad_dead_letters_total{agent},
 * squad_consumer_pending{agent} and squad_consumer_ack_pending{agent} (read
 * from the consumer info at each scrape), squad_tasks_dispatched_total
 * {agent} and squad_missions_total{status} (the orchestrator), and
 * prom-client's default process_* and nodejs_* metrics.
 */
import type { Registry } from "prom-client";

export type TaskOutcome = "succeeded" | "failed";

/** What a consumer info read gives the pending gauges. */
export interface ConsumerCounts {
  num_pending: number;
  num_ack_pending: number;
}

type Op =
  | { kind: "task"; agent: string; outcome: string; seconds: number }
  | { kind: "tokens"; agent: string; model: string; input: number; output: number }
  | { kind: "redelivery"; agent: string }
  | { kind: "dead_letter"; agent: string }
  | { kind: "dispatched"; agent: string }
  | { kind: "mission"; status: string };

/** Observations kept while prom-client is not loaded (the oldest are kept, the rest dropped). */
const QUEUE_LIMIT = 10_000;
const queue: Op[] = [];
let sink: ((op: Op) => void) | null = null;
let enabling: Promise<Registry> | null = null;

const inFlight = new Map<string, number>();
const consumers = new Map<string, () => Promise<ConsumerCounts>>();

function record(op: Op): void {
  if (sink) sink(op);
  else if (queue.length < QUEUE_LIMIT) queue.push(op);
}

export const metrics = {
  /** A task attempt this process ran ended (its task_completed / task_failed). */
  taskFinished(agent: string, outcome: TaskOutcome, ms: number): void {
    record({ kind: "task", agent, outcome, seconds: Math.max(0, ms) / 1000 });
  },
  /** Tokens of this process's model calls, by agent (the orchestrator's planner: "planner"). */
  modelTokens(agent: string, model: string, input: number, output: number): void {
    if (input > 0 || output > 0) record({ kind: "tokens", agent, model, input, output });
  },
  taskStarted(agent: string): void {
    inFlight.set(agent, (inFlight.get(agent) ?? 0) + 1);
  },
  taskEnded(agent: string): void {
    inFlight.set(agent, Math.max(0, (inFlight.get(agent) ?? 0) - 1));
  },
  /** A task delivered again (after a nak, a timeout or a replica's death). */
  redelivered(agent: string): void {
    record({ kind: "redelivery", agent });
  },
  deadLettered(agent: string): void {
    record({ kind: "dead_letter", agent });
  },
  /** The orchestrator published a task_assigned. */
  taskDispatched(agent: string): void {
    record({ kind: "dispatched", agent });
  },
  /** The orchestrator published a mission's final event. */
  missionFinished(status: "completed" | "failed" | "cancelled"): void {
    record({ kind: "mission", status });
  },
  /**
   * Reads the agent's consumer info at each scrape for the pending gauges;
   * returns the function that stops it (the puller's stop).
   */
  watchConsumer(agent: string, read: () => Promise<ConsumerCounts>): () => void {
    consumers.set(agent, read);
    return () => {
      if (consumers.get(agent) === read) consumers.delete(agent);
    };
  },
};

/** Seconds: a `run` step takes milliseconds, a model-driven task minutes. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Loads prom-client and builds the registry (once); queued observations are applied. */
export function enableMetrics(): Promise<Registry> {
  enabling ??= (async () => {
    const prom = await import("prom-client");
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    const tasks = new prom.Counter({
      name: "squad_tasks_total",
      help: "Task attempts run by this process, by agent and outcome",
      labelNames: ["agent", "outcome"],
      registers: [registry],
    });
    const duration = new prom.Histogram({
      name: "squad_task_duration_seconds",
      help: "Duration of the task attempts run by this process",
      labelNames: ["agent", "outcome"],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    const tokens = new prom.Counter({
      name: "squad_model_tokens_total",
      help: "Model tokens used by this process, by agent, model and direction (input, output)",
      labelNames: ["agent", "model", "direction"],
      registers: [registry],
    });
    const redeliveries = new prom.Counter({
      name: "squad_task_redeliveries_total",
      help: "Tasks this process received again (delivery count above 1)",
      labelNames: ["agent"],
      registers: [registry],
    });
    const deadLetters = new prom.Counter({
      name: "squad_dead_letters_total",
      help: "Task messages this process moved to the dead-letter queue",
      labelNames: ["agent"],
      registers: [registry],
    });
    const dispatched = new prom.Counter({
      name: "squad_tasks_dispatched_total",
      help: "task_assigned events published by this process (the orchestrator)",
      labelNames: ["agent"],
      registers: [registry],
    });
    const missions = new prom.Counter({
      name: "squad_missions_total",
      help: "Missions this process (the orchestrator) ended, by final status",
      labelNames: ["status"],
      registers: [registry],
    });
    new prom.Gauge({
      name: "squad_tasks_in_flight",
      help: "Tasks this process is running now",
      labelNames: ["agent"],
      registers: [registry],
      collect() {
        for (const [agent, n] of inFlight) this.set({ agent }, n);
      },
    });
    const pendingOf = async () => {
      const out = new Map<string, ConsumerCounts>();
      await Promise.all(
        [...consumers].map(async ([agent, read]) => {
          try {
            out.set(agent, await read());
          } catch {
            // NATS is away: no sample this scrape rather than a wrong one.
          }
        }),
      );
      return out;
    };
    let lastRead: Promise<Map<string, ConsumerCounts>> | null = null;
    // Both gauges come from one info request per consumer per scrape.
    const read = () =>
      (lastRead ??= pendingOf().finally(() => setImmediate(() => (lastRead = null))));
    new prom.Gauge({
      name: "squad_consumer_pending",
      help: "Tasks waiting in the agent's durable consumer (not yet delivered)",
      labelNames: ["agent"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [agent, c] of await read()) this.set({ agent }, c.num_pending);
      },
    });
    new prom.Gauge({
      name: "squad_consumer_ack_pending",
      help: "Tasks delivered by the agent's consumer and not yet acknowledged",
      labelNames: ["agent"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [agent, c] of await read()) this.set({ agent }, c.num_ack_pending);
      },
    });
    sink = (op) => {
      switch (op.kind) {
        case "task":
          tasks.inc({ agent: op.agent, outcome: op.outcome });
          duration.observe({ agent: op.agent, outcome: op.outcome }, op.seconds);
          break;
        case "tokens":
          tokens.inc({ agent: op.agent, model: op.model, direction: "input" }, op.input);
          tokens.inc({ agent: op.agent, model: op.model, direction: "output" }, op.output);
          break;
        case "redelivery":
          redeliveries.inc({ agent: op.agent });
          break;
        case "dead_letter":
          deadLetters.inc({ agent: op.agent });
          break;
        case "dispatched":
          dispatched.inc({ agent: op.agent });
          break;
        case "mission":
          missions.inc({ status: op.status });
          break;
      }
    };
    for (const op of queue.splice(0)) sink(op);
    return registry;
  })();
  return enabling;
}

/** The exposition text of this process's registry (loads prom-client on first use). */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  const registry = await enableMetrics();
  return { contentType: registry.contentType, body: await registry.metrics() };
}
