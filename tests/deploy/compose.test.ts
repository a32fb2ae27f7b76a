/**
 * docker-compose.yml, checked by structure (no container runtime on these
 * machines; what only a real `docker compose up` would show is listed in
 * docs/operations.md): credentials generated on first start and each
 * process given only its own seed, a worker service for every agent of the
 * default roster, healthchecks and `service_healthy` ordering, a stop grace
 * above the drain, init, ports on 127.0.0.1, pinned images, a one-shot model
 * pull, a cli service that submits from inside the stack, and a prometheus
 * service whose scrape configuration reaches every process's /metrics.
 */
import { execFile } from "node:child_process";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { loadRoster } from "../../src/workers/roster.ts";
import { REPO_ROOT } from "../helpers/swarm-process.ts";

interface Volume {
  type?: string;
  source?: string;
  target?: string;
  read_only?: boolean;
  volume?: { subpath?: string };
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  user?: string;
  init?: boolean;
  restart?: string;
  profiles?: string[];
  ports?: string[];
  stop_grace_period?: string;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: Array<string | Volume>;
  environment?: Record<string, string>;
}

const text = await readFile(path.join(REPO_ROOT, "docker-compose.yml"), "utf8");
const compose = YAML.parse(text, { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs?: Record<string, { content?: string }>;
};
const services = compose.services;
const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);
const workers = Object.entries(services).filter(([n]) => n.startsWith("worker-"));
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1]);
const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) =>
    typeof v === "string"
      ? { source: v.split(":")[0], target: v.split(":")[1], subpath: undefined }
      : { source: v.source, target: v.target, subpath: v.volume?.subpath },
  );

describe("docker-compose.yml", () => {
  it("has a worker service for every agent of the default roster, each with only its own seed", async () => {
    const roster = await loadRoster(path.join(REPO_ROOT, "rosters/default.yaml"));
    const agents = workers.map(([, s]) => s.command![s.command!.indexOf("--agent") + 1]);
    expect(agents.sort()).toEqual(roster.agents.map((a) => a.name).sort());
    for (const [name, s] of workers) {
      const agent = s.command![s.command!.indexOf("--agent") + 1];
      const creds = mounts(s).filter((m) => m.source === "creds");
      expect(creds, name).toEqual([
        { source: "creds", target: "/creds", subpath: `worker-${agent}` },
      ]);
      expect(
        mounts(s).some((m) => m.source === "state"),
        name,
      ).toBe(false);
      expect(s.environment).toMatchObject({
        NATS_NKEY: "/creds/seed.nk",
        SWARM_NATS_INBOX_PREFIX: `_INBOX_${agent}`,
        NATS_URL: "nats://nats:4222",
      });
    }
  });

  it("generates credentials on first start, before NATS starts; no password in the file", () => {
    const init = services["squad-init"]!;
    expect(init.command?.[0]).toBe("nats-config");
    expect(init.command).toEqual(
      expect.arrayContaining(["--state", "/state", "--export", "/creds"]),
    );
    expect(services.nats!.depends_on?.["squad-init"]?.condition).toBe(
      "service_completed_successfully",
    );
    expect(mounts(services.nats!).map((m) => m.target)).toContain("/etc/nats/auth");
    expect(text).not.toMatch(/PASS\b|password|change-me/i);
    expect(services.orchestrator!.environment).toMatchObject({
      NATS_NKEY: "/state/nats/creds/orchestrator.nk",
      SWARM_IDENTITIES: "/state/nats/identities.json",
    });
  });

  it("starts in order of health: NATS and the orchestrator healthy, the model pulled", () => {
    expect(services.nats!.healthcheck?.test?.join(" ")).toMatch(/healthz\?js-enabled-only=true/);
    expect(services.ollama!.healthcheck?.test).toBeDefined();
    expect(services.orchestrator!.depends_on?.nats?.condition).toBe("service_healthy");
    for (const [name, s] of workers) {
      expect(s.depends_on, name).toEqual({
        nats: { condition: "service_healthy" },
        orchestrator: { condition: "service_healthy" },
        "ollama-pull": { condition: "service_completed_successfully" },
      });
    }
    // The orchestrator and workers are healthy by the image's HEALTHCHECK on their /healthz.
    for (const [name, s] of [["orchestrator", services.orchestrator!] as const, ...workers])
      expect(s.environment?.SWARM_HEALTH_PORT, name).toBe("8080");
  });

  it("stops gracefully: a grace period above the replicas' 10 s drain, init reaping zombies", () => {
    for (const [name, s] of [["orchestrator", services.orchestrator!] as const, ...workers]) {
      expect(seconds(s.stop_grace_period ?? "0s"), name).toBeGreaterThan(10);
    }
    for (const [name, s] of ours) expect(s.init, name).toBe(true);
  });

  it("publishes ports on 127.0.0.1 unless asked, and pins every image", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? [])
        expect(p, name).toMatch(/^\$\{SQUAD_BIND:-127\.0\.0\.1\}:\d+:\d+$/);
      if (s.image && !s.build) expect(s.image, name).toMatch(/:v?\d+\.\d+\.\d+(-[a-z]+)?$/);
    }
  });

  it("has a cli service that runs commands inside the stack as the operator", () => {
    const cli = services.cli!;
    expect(cli.profiles).toEqual(["cli"]);
    expect(mounts(cli)).toEqual(
      expect.arrayContaining([
        { source: "workspace", target: "/workspace", subpath: undefined },
        { source: "./mission-briefs", target: "/briefs", subpath: undefined },
        { source: "creds", target: "/creds", subpath: "operator" },
      ]),
    );
    expect(cli.healthcheck?.disable).toBe(true);
  });

  it("has a prometheus service scraping /metrics of the orchestrator and every worker replica", () => {
    const prom = services.prometheus! as Service & {
      configs?: Array<{ source: string; target: string }>;
    };
    expect(prom.profiles).toEqual(["observability"]);
    expect(prom.ports).toEqual(["${SQUAD_BIND:-127.0.0.1}:9090:9090"]);
    expect(prom.configs).toEqual([
      { source: "prometheus", target: "/etc/prometheus/prometheus.yml" },
    ]);
    expect(prom.command).toContain("--config.file=/etc/prometheus/prometheus.yml");
    const scrape = YAML.parse(compose.configs!.prometheus!.content!) as {
      scrape_configs: Array<{
        job_name: string;
        static_configs?: Array<{ targets: string[] }>;
        dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
      }>;
    };
    const job = (name: string) => scrape.scrape_configs.find((j) => j.job_name === name)!;
    const port = services.orchestrator!.environment!.SWARM_HEALTH_PORT;
    expect(job("squad-orchestrator").static_configs).toEqual([
      { targets: [`orchestrator:${port}`] },
    ]);
    // Every worker service (a DNS name that resolves to all of its replicas), on its health port.
    const dns = job("squad-workers").dns_sd_configs!;
    expect(dns).toHaveLength(1);
    expect(dns[0]!.names.sort()).toEqual(workers.map(([n]) => n).sort());
    expect(dns[0]!).toMatchObject({ type: "A", port: Number(port) });
    // The processes listen beyond their own loopback so that it can reach them.
    for (const [name, s] of [["orchestrator", services.orchestrator!] as const, ...workers]) {
      expect(s.environment?.SWARM_HEALTH_HOST, name).toBe("0.0.0.0");
      expect(s.environment?.SWARM_HEALTH_PORT, name).toBe(port);
    }
    expect(compose.volumes).toHaveProperty("prometheus-data");
  });

  it("gives Prometheus a configuration its own promtool accepts", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "squad-promtool-"));
    try {
      const file = path.join(dir, "prometheus.yml");
      await writeFile(file, compose.configs!.prometheus!.content!);
      const promtool = process.env.PROMTOOL_BIN ?? "/usr/bin/promtool";
      await access(promtool).catch(() => {
        throw new Error(
          "promtool is not installed: `apt-get install prometheus` (scripts/test does it when run as root), or set PROMTOOL_BIN",
        );
      });
      const { stdout } = await promisify(execFile)(promtool, ["check", "config", file]);
      expect(stdout).toMatch(/SUCCESS/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("declares every named volume it mounts", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (m.source && !m.source.startsWith("."))
          expect(compose.volumes, `${name}: ${m.source}`).toHaveProperty(m.source);
      }
    }
  });
});
