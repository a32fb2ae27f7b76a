/**
 * Prometheus scrapes a real orchestrator and a real worker replica (each
 * with its /metrics on SWARM_HEALTH_PORT) after a one-task mission, and its
 * own query API answers with the task counter of the mission's agent, the
 * orchestrator's dispatches and mission, the consumer's pending gauge and
 * the process metrics. The Prometheus is Debian's `prometheus` package
 * (scripts/test installs it when missing and root); without it this test
 * fails and says how to get it.
 */
import { execFile } from "node:child_process";
import { access, chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, runSwarm, spawnSwarm, swarmEnv } from "../helpers/swarm-process.ts";

const run = promisify(execFile);
let nats: NatsServerHandle;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "squad-prometheus-"));
  // The sandbox user of the worker passes through to the workspace.
  await chmod(dir, 0o711);
}, 60_000);
afterAll(async () => {
  await killAllSwarms();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
});

/** Debian's binary, or PROMETHEUS_BIN; a clear failure (never a skip) without one. */
async function prometheusBinary(): Promise<string> {
  const candidates = [process.env.PROMETHEUS_BIN, "/usr/bin/prometheus"].filter(
    (p): p is string => !!p,
  );
  for (const c of candidates) {
    try {
      await access(c);
      return c;
    } catch {
      // next
    }
  }
  throw new Error(
    "prometheus is not installed: `apt-get install prometheus` (scripts/test does it when run as root), or set PROMETHEUS_BIN",
  );
}

const BRIEF = `---
title: Counted
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: one
          agent: builder
          title: One
          run: ["echo one > one.txt"]
        - id: two
          agent: builder
          title: Two
          run: ["echo two > two.txt"]
          verify: ["test -s two.txt"]
---
Two tasks, no model.
`;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(promUrl: string, q: string): Promise<Sample[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { status: string; data: { result: Sample[] } };
  expect(body.status).toBe("success");
  return body.data.result;
}

/** What Prometheus printed, for a failure's message. */
let promLog = (): string => "";

/**
 * Asks Prometheus again (it scrapes every second) until the answer satisfies
 * `want`; after a minute, fails with the last answer and Prometheus's log.
 */
async function until(
  promUrl: string,
  q: string,
  want: (r: Sample[]) => boolean,
): Promise<Sample[]> {
  const deadline = Date.now() + 60_000;
  let last: unknown = null;
  for (;;) {
    const r = await query(promUrl, q).catch((err: unknown) => {
      last = err;
      return [] as Sample[];
    });
    if (want(r)) return r;
    if (r.length) last = r;
    if (Date.now() > deadline) {
      throw new Error(
        `Prometheus never answered ${q} as expected; last: ${JSON.stringify(last)}\n${promLog().slice(-3000)}`,
      );
    }
    await sleep(250);
  }
}

describe("Prometheus scraping the swarm", () => {
  it("returns the task counter of the mission's agent through its query API", async () => {
    const bin = await prometheusBinary();
    const { stdout } = await run(bin, ["--version"]);
    expect(stdout + "").toMatch(/prometheus, version \d+/);

    const workspace = path.join(dir, "ws");
    const [orchPort, workerPort, promPort] = [await freePort(), await freePort(), await freePort()];
    const env = (port: number) =>
      swarmEnv(nats.url, workspace, { SWARM_HEALTH_PORT: String(port), SWARM_SANDBOX: "none" });
    const orchestrator = spawnSwarm(["orchestrator"], env(orchPort));
    const worker = spawnSwarm(["worker", "--agent", "builder"], env(workerPort));
    await orchestrator.waitFor(/health endpoint listening/, 60_000);
    await worker.waitFor(/health endpoint listening/, 60_000);

    const brief = path.join(dir, "brief.md");
    await writeFile(brief, BRIEF);
    const submitted = await runSwarm(["submit", brief, "--wait"], swarmEnv(nats.url, workspace), {
      timeoutMs: 90_000,
    });
    expect(submitted.code, `${submitted.stderr}\n${orchestrator.stderr().slice(-2000)}`).toBe(0);

    // The replica's own endpoint, as Prometheus will read it.
    const text = await (await fetch(`http://127.0.0.1:${workerPort}/metrics`)).text();
    expect(text).toMatch(/^squad_tasks_total\{agent="builder",outcome="succeeded"\} 2$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);

    await writeFile(
      path.join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        "  - job_name: squad-orchestrator",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${orchPort}"]`,
        "  - job_name: squad-workers",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${workerPort}"]`,
        "",
      ].join("\n"),
    );
    const prometheus = spawnSwarm(
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      process.env,
      { command: bin, cwd: dir },
    );
    const promUrl = `http://127.0.0.1:${promPort}`;
    promLog = () => prometheus.stderr();
    try {
      const up = await until(
        promUrl,
        "up",
        (r) => r.length === 2 && r.every((s) => s.value[1] === "1"),
      );
      expect(up.map((s) => s.metric.job).sort()).toEqual(["squad-orchestrator", "squad-workers"]);

      const tasks = await until(promUrl, 'squad_tasks_total{agent="builder"}', (r) => r.length > 0);
      expect(tasks).toHaveLength(1);
      expect(tasks[0]!.metric).toMatchObject({
        job: "squad-workers",
        agent: "builder",
        outcome: "succeeded",
      });
      expect(tasks[0]!.value[1]).toBe("2");

      const dispatched = await until(promUrl, "squad_tasks_dispatched_total", (r) => r.length > 0);
      expect(dispatched[0]!.metric).toMatchObject({ job: "squad-orchestrator", agent: "builder" });
      expect(dispatched[0]!.value[1]).toBe("2");
      const missions = await until(promUrl, "squad_missions_total", (r) => r.length > 0);
      expect(missions[0]!.metric).toMatchObject({ status: "completed" });

      const pending = await until(promUrl, "squad_consumer_pending", (r) => r.length > 0);
      expect(pending[0]!.metric).toMatchObject({ job: "squad-workers", agent: "builder" });
      expect(pending[0]!.value[1]).toBe("0");
      const durations = await until(
        promUrl,
        'squad_task_duration_seconds_count{agent="builder"}',
        (r) => r.length > 0,
      );
      expect(durations[0]!.value[1]).toBe("2");
      const inFlight = await until(promUrl, "squad_tasks_in_flight", (r) => r.length > 0);
      expect(inFlight[0]!.value[1]).toBe("0");
      const memory = await until(promUrl, "process_resident_memory_bytes", (r) => r.length === 2);
      expect(memory.every((s) => Number(s.value[1]) > 0)).toBe(true);
    } finally {
      prometheus.kill("SIGTERM");
      await prometheus.exited;
    }
    orchestrator.kill("SIGTERM");
    worker.kill("SIGTERM");
    expect((await worker.exited).code).toBe(0);
    expect((await orchestrator.exited).code).toBe(0);
  }, 180_000);
});
