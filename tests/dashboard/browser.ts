/**
 * A real Chromium for the dashboard's tests, driven by playwright-core:
 * Debian's `chromium` package (scripts/lib/setup.sh installs it), or the
 * browser CHROMIUM_PATH names. Without one the tests fail and say how to get
 * it; they never skip.
 */
import { mkdtempSync } from "node:fs";
import { access } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { REPO_ROOT, spawnSwarm, type SwarmProcess } from "../helpers/swarm-process.ts";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

export async function chromiumPath(): Promise<string> {
  const wanted = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : CANDIDATES;
  for (const p of wanted) {
    try {
      await access(p);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(
    `the dashboard's browser tests need Chromium, and none is at ${wanted.join(", ")}: ` +
      "run scripts/setup (it installs Debian's chromium), or `apt-get install chromium`, " +
      "or set CHROMIUM_PATH to a Chromium binary",
  );
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: await chromiumPath(),
    // As root (CI, containers) Chromium's own sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A page that records dialogs (alert) and script errors, to check that nothing ran. */
export async function openPage(
  browser: Browser,
): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, dialogs, errors };
}

/**
 * Where the tests save their screenshots: docs/images/ when
 * SQUAD_SCREENSHOTS=docs (to refresh the pictures the docs show), else a
 * temp directory, so an ordinary test run leaves the checkout as it was.
 */
export const SCREENSHOTS =
  process.env.SQUAD_SCREENSHOTS === "docs"
    ? path.join(REPO_ROOT, "docs/images")
    : mkdtempSync(path.join(tmpdir(), "squad-screenshots-"));

export const TEST_TOKEN = "dashboard-test-token-0123456789";

/** `swarm dashboard --port 0` with the test token; resolves once it printed its URL. */
export async function startDashboardProcess(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): Promise<{ proc: SwarmProcess; url: string }> {
  const proc = spawnSwarm(["dashboard", "--port", "0", ...args], {
    ...env,
    SWARM_DASHBOARD_TOKEN: TEST_TOKEN,
  });
  await proc.waitFor(/dashboard: http:\/\/\S+\//);
  const url = /dashboard: (http:\/\/\S+\/)/.exec(proc.stdout())![1]!;
  return { proc, url };
}
