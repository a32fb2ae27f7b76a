/**
 * The dashboard keeps the page live through restarts, in a real Chromium:
 * started with NATS down, it says so on the page and recovers when NATS
 * comes up; NATS restarting, and the dashboard itself restarting, leave the
 * page live without a reload.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectBus,
  createPublisher,
  provisionStreams,
  type NatsConnection,
} from "../../src/bus/index.ts";
import { makeEvent } from "../../src/schema/index.ts";
import { freePort, startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms, swarmEnv } from "../helpers/swarm-process.ts";
import { SCREENSHOTS, launchBrowser, openPage, startDashboardProcess } from "./browser.ts";

let browser: Browser;
let workspace: string;
let server: NatsServerHandle | null = null;
let nc: NatsConnection | null = null;

beforeAll(async () => {
  browser = await launchBrowser();
  workspace = await mkdtemp(path.join(os.tmpdir(), "swarm-dashboard-reconnect-"));
});

afterAll(async () => {
  await killAllSwarms();
  await browser?.close();
  await nc?.close();
  await server?.stop();
  await rm(workspace, { recursive: true, force: true });
});

async function publishMission(id: string, title: string): Promise<void> {
  await createPublisher(nc!).publish(
    makeEvent(
      "mission_planned",
      { mission_id: id, source: "orchestrator" },
      {
        title,
        planner: null,
        plan: { waves: [{ wave: 1, tasks: [{ id: "t1", agent: "builder", title: "one" }] }] },
      },
    ),
  );
}

async function markNoReload(page: Page): Promise<void> {
  await page.evaluate("window.__noReload = 1");
}
async function neverReloaded(page: Page): Promise<boolean> {
  return (await page.evaluate("window.__noReload === 1")) === true;
}

describe("the dashboard across restarts", () => {
  it("started with NATS down: says so on the page, recovers when NATS comes up; survives NATS and dashboard restarts", async () => {
    const natsPort = await freePort();
    const dashboardPort = await freePort();
    const env = swarmEnv(`nats://127.0.0.1:${natsPort}`, workspace);
    let dashboard = await startDashboardProcess(env, ["--port", String(dashboardPort)]);
    const { page, errors } = await openPage(browser);
    await page.goto(dashboard.url);
    await page.locator("#nats-status[data-state=down]").waitFor();
    expect(await page.locator("#nats-status").getAttribute("title")).toMatch(/not reachable/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "dashboard-nats-down.png") });
    await markNoReload(page);

    // NATS comes up: the page says so and shows what is published.
    server = await startNatsServer({ port: natsPort });
    nc = await connectBus({ servers: server.url, name: "dashboard-reconnect-test" });
    await provisionStreams(nc);
    await page.locator("#nats-status[data-state=up]").waitFor({ timeout: 30_000 });
    await publishMission("m-after-start", "After NATS came up");
    await page.locator('tr[data-mission-id="m-after-start"]').waitFor();

    // NATS restarts (same store): down on the page, then up; an event after it shows.
    // A filter typed on the events page but not applied survives the re-render NATS coming back makes.
    await page.locator('nav a[href="/events"]').click();
    await page.locator("input[name=mission]").fill("m-after");
    await server.kill();
    await page.locator("#nats-status[data-state=down]").waitFor({ timeout: 30_000 });
    const rendered = await page.locator("body").getAttribute("data-rendered");
    await server.restart();
    await page.locator("#nats-status[data-state=up]").waitFor({ timeout: 30_000 });
    await page.waitForFunction(`document.body.dataset.rendered !== ${JSON.stringify(rendered)}`);
    expect(await page.locator("input[name=mission]").inputValue()).toBe("m-after");
    await page.locator('nav a[href="/"]').click();
    await publishMission("m-after-nats-restart", "After NATS restarted");
    await page.locator('tr[data-mission-id="m-after-nats-restart"]').waitFor({ timeout: 30_000 });

    // The dashboard restarts on its port: the page reconnects by itself.
    dashboard.proc.kill("SIGKILL");
    await dashboard.proc.exited;
    await page.locator("#live[data-state=down]").waitFor();
    dashboard = await startDashboardProcess(env, ["--port", String(dashboardPort)]);
    await page.locator("#live[data-state=live]").waitFor({ timeout: 30_000 });
    await page.locator("#nats-status[data-state=up]").waitFor({ timeout: 30_000 });
    await publishMission("m-after-dashboard-restart", "After the dashboard restarted");
    await page.locator('tr[data-mission-id="m-after-dashboard-restart"]').waitFor();
    // History came back from SQUAD_EVENTS too.
    await page.locator('tr[data-mission-id="m-after-start"]').waitFor();
    expect(await neverReloaded(page)).toBe(true);
    expect(errors).toEqual([]);
    dashboard.proc.kill();
  }, 180_000);
});
