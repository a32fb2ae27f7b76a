/**
 * The dashboard in a real Chromium against a real swarm: a nats-server, the
 * orchestrator and worker replicas as `swarm` processes, `swarm dashboard`
 * as a process. The offline demo mission is watched live to its end; a task
 * shows its steps and outputs; a dangerous command is approved from the
 * page and the mission goes on; a running mission is cancelled from the
 * page; actions without or with a wrong token are refused and change
 * nothing; a hostile title is shown as text and runs nothing; a model-driven
 * task's timeline shows each model call between its tool steps, its reply
 * as text (those events are published here: no model runs). Each view is
 * saved (to docs/images/ with SQUAD_SCREENSHOTS=docs).
 */
import { readFile, writeFile } from "node:fs/promises";
import { get } from "node:http";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayEvents } from "../../src/bus/index.ts";
import { makeEvent, type SquadEvent } from "../../src/schema/index.ts";
import { useSwarmBus } from "../helpers/swarm-bus.ts";
import { REPO_ROOT, runSwarm, spawnSwarm } from "../helpers/swarm-process.ts";
import {
  SCREENSHOTS,
  TEST_TOKEN,
  launchBrowser,
  openPage,
  startDashboardProcess,
} from "./browser.ts";

const bus = useSwarmBus("dashboard");
const IMAGES = SCREENSHOTS;
const XSS = "<img src=x onerror=alert(1)>";

const ROSTER = `agents:
  - name: builder
    description: builds
    persona: You build.
    tools: [run_shell]
  - name: tester
    description: tests
    persona: You test.
    tools: [run_shell]
  - name: docs_writer
    description: writes docs
    persona: You write.
    tools: [run_shell]
  - name: gated
    description: ships, with approval
    persona: You ship.
    tools: [run_shell]
    policy:
      approval: ["\\\\bdeploy-prod\\\\b"]
      approval_timeout_s: 300
`;

const GATED_BRIEF = `---
title: Ship with approval
agents: [gated]
plan:
  waves:
    - wave: 1
      tasks:
        - id: ship
          agent: gated
          title: Ship to production
          run: ["echo deploy-prod > shipped.txt"]
          verify: ["test -s shipped.txt"]
---
# Ship
`;

const SLOW_BRIEF = `---
title: Slow mission
agents: [builder]
plan:
  waves:
    - wave: 1
      tasks:
        - id: slow
          agent: builder
          title: Wait a long time
          run: ["sleep 300"]
---
# Slow
`;

let browser: Browser;
let dashboardUrl: string;
let env: NodeJS.ProcessEnv;

async function submit(brief: string, name: string): Promise<string> {
  const file = path.join(bus.workspace, name);
  await writeFile(file, brief);
  const r = await runSwarm(["submit", file], env);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

async function recorded(missionId: string): Promise<SquadEvent[]> {
  const out: SquadEvent[] = [];
  for await (const { event } of replayEvents(bus.nc, { missionId })) out.push(event);
  return out;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(IMAGES, `dashboard-${name}.png`), fullPage: false });
}

/** Marks the page; the mark survives only if the page never reloads. */
async function markNoReload(page: Page): Promise<void> {
  await page.evaluate("window.__noReload = 1");
}
async function neverReloaded(page: Page): Promise<boolean> {
  return (await page.evaluate("window.__noReload === 1")) === true;
}

async function post(
  pathname: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(new URL(pathname, dashboardUrl), {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

beforeAll(async () => {
  const roster = path.join(bus.workspace, "roster.yaml");
  await writeFile(roster, ROSTER);
  env = { ...bus.env, SWARM_ROSTER: roster };
  browser = await launchBrowser();
  const orchestrator = spawnSwarm(["orchestrator"], env);
  const workers = ["builder", "tester", "docs_writer", "gated"].map((a) =>
    spawnSwarm(["worker", "--agent", a], env),
  );
  const dashboard = await startDashboardProcess(env);
  dashboardUrl = dashboard.url;
  await orchestrator.waitFor(/orchestrator ready/);
  await Promise.all(workers.map((w) => w.waitFor(/worker replica online/)));
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

describe("swarm dashboard in Chromium", () => {
  it("follows the offline demo mission live to its end, and shows a task's steps and outputs", async () => {
    const { page, errors } = await openPage(browser);
    const csp = (await page.goto(dashboardUrl))!.headers()["content-security-policy"];
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    await page.locator("#nats-status[data-state=up]").waitFor();
    await markNoReload(page);

    const brief = await readFile(path.join(REPO_ROOT, "mission-briefs/demo-library.md"), "utf8");
    const missionId = await submit(brief, "demo.md");
    // The missions list shows it live, without a reload.
    const row = page.locator(`tr[data-mission-id="${missionId}"]`);
    await row.waitFor();

    await row.getByRole("link", { name: missionId }).click();
    await page.locator("[data-testid=plan-graph]").waitFor();
    const total = await page.locator("svg .node").count();
    expect(total).toBeGreaterThan(3);
    expect(await page.locator("svg .edge").count()).toBeGreaterThan(0);
    expect(await page.locator("svg .node.critical").count()).toBeGreaterThan(1);
    // Every task reaches "succeeded" on the page, live.
    await page
      .locator(`svg .node[data-state=succeeded], svg .node[data-state=merged]`)
      .nth(total - 1)
      .waitFor({ timeout: 180_000 });
    await page.locator("h1 .state[data-state=completed]").waitFor({ timeout: 30_000 });
    expect(await neverReloaded(page)).toBe(true);
    await shot(page, "mission");

    await page.goto(dashboardUrl);
    await page.locator(`tr[data-mission-id="${missionId}"] .state[data-state=completed]`).waitFor();
    await shot(page, "missions");

    // A task: its attempt, replica, run steps with exit codes and outputs, verification.
    await page.goto(`${dashboardUrl}missions/${missionId}`);
    await page.locator('svg .node[data-task-id="slugify"]').click();
    await page.locator("section.attempt[data-status=succeeded]").waitFor();
    expect(page.url()).toContain(`/missions/${missionId}/tasks/slugify`);
    const attempt = page.locator("section.attempt").first();
    await expect
      .poll(() => attempt.textContent(), { timeout: 60_000 })
      .toMatch(/replica builder\//);
    expect(await attempt.locator(".timeline li[data-kind=run]").count()).toBeGreaterThan(0);
    expect(await attempt.locator(".timeline").textContent()).toMatch(/exit 0/);
    expect(await attempt.textContent()).toMatch(/Verification/);
    await shot(page, "task");

    await page.goto(`${dashboardUrl}agents`);
    await page.locator("[data-testid=replicas] tbody tr").first().waitFor();
    expect(await page.locator("[data-testid=replicas]").textContent()).toMatch(/gated/);
    await page.locator("[data-testid=consumers] tbody tr").first().waitFor();
    expect(await page.locator("[data-testid=consumers]").textContent()).toMatch(/worker-builder/);
    await shot(page, "agents");

    await page.goto(`${dashboardUrl}events`);
    await page.locator("input[name=mission]").fill(missionId);
    await page.locator("input[name=type]").fill("task_completed");
    await page.locator("[data-testid=apply-filter]").click();
    // The filtered log comes back from the server: wait for it, however busy the machine.
    await expect
      .poll(() => page.locator("[data-testid=event-log] tbody tr").count(), { timeout: 60_000 })
      .toBe(total);
    const types = await page
      .locator("[data-testid=event-log] tbody tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-type")));
    expect(new Set(types)).toEqual(new Set(["task_completed"]));
    await shot(page, "events");
    expect(errors).toEqual([]);
  }, 300_000);

  it("approves a pending dangerous command from the approvals view; the mission goes on and the audit names the operator", async () => {
    const { page, errors } = await openPage(browser);
    await page.goto(`${dashboardUrl}approvals#token=${TEST_TOKEN}`);
    await page.locator("#nats-status[data-state=up]").waitFor();
    await markNoReload(page);
    const missionId = await submit(GATED_BRIEF, "gated.md");
    const row = page.locator(`tr[data-approval-id^="${missionId}.ship."]`);
    await row.waitFor({ timeout: 60_000 });
    expect(await row.locator(".command").textContent()).toBe("echo deploy-prod > shipped.txt");
    await shot(page, "approvals");

    // Without the token, and with a wrong one: 401, and the approval stays pending.
    const approvalId = (await row.getAttribute("data-approval-id"))!;
    for (const token of [undefined, "wrong-token-wrong-token-wrong"]) {
      const r = await post(`/api/approvals/${approvalId}`, { decision: "approved" }, token);
      expect(r.status).toBe(401);
    }
    expect((await recorded(missionId)).some((e) => e.type === "approval_resolved")).toBe(false);

    await row.locator("input.reason").fill("checked the release notes");
    await row.locator("[data-testid=approve]").click();
    await page.locator("#flash[data-kind=ok]").waitFor();
    await page.locator("[data-testid=no-approvals]").waitFor();
    expect(await neverReloaded(page)).toBe(true);

    await page.goto(`${dashboardUrl}missions/${missionId}`);
    await page.locator("h1 .state[data-state=completed]").waitFor({ timeout: 60_000 });
    const audit = await runSwarm(["audit", missionId, "--json"], env);
    expect(audit.code).toBe(0);
    const { rows } = JSON.parse(audit.stdout) as {
      rows: Array<{ kind: string; decision: string; by: string }>;
    };
    const approval = rows.find((r) => r.kind === "approval");
    expect(approval).toMatchObject({
      decision: "approved",
      by: "cli",
      decision_reason: "checked the release notes",
    });
    expect(errors).toEqual([]);
  }, 180_000);

  it("cancels a running mission from the page, and refuses a cancel without the right token", async () => {
    const { page, errors } = await openPage(browser);
    const missionId = await submit(SLOW_BRIEF, "slow.md");
    await page.goto(`${dashboardUrl}missions/${missionId}`);
    await page.locator('svg .node[data-task-id="slow"][data-state=running]').waitFor({
      timeout: 60_000,
    });

    for (const token of [undefined, "not-the-token-not-the-token"]) {
      const r = await post(`/api/missions/${missionId}/cancel`, {}, token);
      expect(r.status).toBe(401);
    }
    expect((await recorded(missionId)).some((e) => e.type === "mission_cancelled")).toBe(false);

    // No token in the page yet: the page shows the refusal.
    await page.locator("[data-testid=cancel]").click();
    await expect.poll(() => page.locator("#flash").textContent()).toMatch(/^401/);
    await page.locator("#token").fill(TEST_TOKEN);
    await page.locator("#token").dispatchEvent("change");
    await page.locator("[data-testid=cancel-reason]").fill("changed my mind");
    await page.locator("[data-testid=cancel]").click();
    await page.locator("h1 .state[data-state=cancelled]").waitFor({ timeout: 60_000 });
    await page.locator('svg .node[data-task-id="slow"][data-state=cancelled]').waitFor();
    const cancels = (await recorded(missionId)).filter((e) => e.type === "mission_cancelled");
    expect(cancels.map((e) => e.source)).toContain("orchestrator");
    expect(cancels[0]!.payload).toMatchObject({ reason: "changed my mind", requested_by: "cli" });
    expect(errors).toEqual([]);
  }, 180_000);

  it("answers only to loopback names (no DNS rebinding), and every response forbids inline script", async () => {
    const status = (host: string) =>
      new Promise<{ code: number; csp: string | undefined }>((resolve, reject) => {
        const u = new URL("api/missions", dashboardUrl);
        get(
          { host: u.hostname, port: u.port, path: u.pathname, headers: { Host: host } },
          (res) => {
            res.resume();
            resolve({
              code: res.statusCode!,
              csp: res.headers["content-security-policy"] as string,
            });
          },
        ).on("error", reject);
      });
    const port = new URL(dashboardUrl).port;
    expect((await status(`rebound.example:${port}`)).code).toBe(421);
    const ok = await status(`localhost:${port}`);
    expect(ok.code).toBe(200);
    expect(ok.csp).toMatch(/default-src 'none'.*script-src 'self'/);
  });

  it("shows a model task's calls between its tool steps, with tokens, duration and the reply as text", async () => {
    const { page, dialogs, errors } = await openPage(browser);
    // No mission_planned: the orchestrator has nothing to run; the dashboard learns the task
    // from its events, as a worker that ran it with a model publishes them.
    const missionId = "m-model-calls";
    const worker = "builder/w1";
    const fields = { mission_id: missionId, task_id: "t1", source: worker };
    const call = (n: number, stepsBefore: number, tools: string[], text: string) =>
      makeEvent("task_model_called", fields, {
        attempt: 1,
        worker,
        call: n,
        model: "ollama:qwen-test",
        input_tokens: 400 + n,
        output_tokens: 30 + n,
        duration_ms: 1200 + n,
        tool_calls: tools,
        text,
        finish_reason: "stop",
        steps_before: stepsBefore,
      });
    const step = {
      tool: "write_file",
      args: { path: "hello.txt", content: "hello" },
      ok: true,
      duration_ms: 3,
      output: "wrote 5 bytes",
    };
    for (const e of [
      makeEvent("task_started", fields, { attempt: 1, worker, delivery: 1 }),
      call(1, 0, ["write_file"], "I will write hello.txt."),
      makeEvent("task_progress", fields, { attempt: 1, worker, step }),
      call(2, 1, [], `Done. ${XSS}`),
      makeEvent("task_completed", fields, {
        result: {
          status: "succeeded",
          summary: "wrote hello.txt",
          steps: [step],
          verification: [],
          usage: { model: "ollama:qwen-test", input_tokens: 803, output_tokens: 63 },
          attempt: 1,
          duration_ms: 2500,
          worker,
        },
      }),
    ])
      await bus.publisher.publish(e);
    const api = new URL(`api/missions/${missionId}/tasks/t1`, dashboardUrl);
    await expect
      .poll(async () => {
        const r = await fetch(api);
        if (r.status !== 200) return null;
        const body = (await r.json()) as { task: { attempts: Array<{ status: string }> } };
        return body.task.attempts[0]?.status ?? null;
      })
      .toBe("succeeded");

    await page.goto(`${dashboardUrl}missions/${missionId}/tasks/t1`);
    const attempt = page.locator("section.attempt[data-status=succeeded]");
    await attempt.waitFor();
    const entries = attempt.locator(".timeline > li");
    expect(await entries.evaluateAll((li) => li.map((l) => l.getAttribute("data-tool")))).toEqual([
      "model",
      "write_file",
      "model",
    ]);
    const first = attempt.locator('.timeline li[data-tool="model"][data-call="1"]');
    expect(await first.textContent()).toMatch(
      /model call 1 · ollama:qwen-test · 401 input \/ 31 output tokens · 1201 ms · asked for write_file · stop/,
    );
    expect(await first.locator("pre.reply").textContent()).toBe("I will write hello.txt.");
    const last = attempt.locator('.timeline li[data-tool="model"][data-call="2"]');
    expect(await last.textContent()).toMatch(/answered in text/);
    // The reply is shown as text: no element was made from it, no handler ran.
    expect(await last.locator("pre.reply").textContent()).toBe(`Done. ${XSS}`);
    expect(await page.locator("main img").count()).toBe(0);
    expect(await attempt.locator("[data-testid=usage]").textContent()).toBe(
      "model ollama:qwen-test · 803 input / 63 output tokens in 2 calls",
    );
    await shot(page, "task-model");
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);

  it("shows a hostile title as text, runs nothing, and says clearly when a mission is unknown", async () => {
    const { page, dialogs, errors } = await openPage(browser);
    await page.goto(dashboardUrl);
    await page.locator("#nats-status[data-state=up]").waitFor();
    const missionId = "m-xss-title";
    await bus.publisher.publish(
      makeEvent(
        "mission_planned",
        { mission_id: missionId, source: "orchestrator" },
        {
          title: XSS,
          planner: null,
          plan: {
            waves: [{ wave: 1, tasks: [{ id: "t1", agent: "builder", title: XSS }] }],
          },
        },
      ),
    );
    const row = page.locator(`tr[data-mission-id="${missionId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain(XSS);
    await page.goto(`${dashboardUrl}missions/${missionId}`);
    await page.locator("[data-testid=plan-graph]").waitFor();
    expect(await page.locator("h1").textContent()).toContain(XSS);
    expect(await page.locator("[data-testid=tasks]").textContent()).toContain(XSS);
    // No element was made from the text, no handler ran.
    expect(await page.locator("main img").count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);

    const res = await page.goto(`${dashboardUrl}missions/no-such-mission`);
    expect(res!.status()).toBe(404);
    await page.locator("[data-testid=not-found]").waitFor();
    expect(await page.locator("[data-testid=not-found]").textContent()).toMatch(
      /No mission no-such-mission is known/,
    );
    await shot(page, "not-found");
  }, 60_000);
});
