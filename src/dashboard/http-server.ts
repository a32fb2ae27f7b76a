/**
 * The dashboard's HTTP server: the page and its assets (all served from
 * here: the product works offline), the JSON API the page reads, the
 * server-sent event stream that keeps it live, and the actions, which need
 * the token. Every response carries a Content-Security-Policy that forbids
 * inline script and anything from another origin.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { BadInputError, InfrastructureError, errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";
import { bearerToken, isLoopbackHost, tokenMatches } from "./access.ts";
import { CancelBody, DecisionBody, type DashboardActions } from "./actions.ts";
import {
  passes,
  type LogFilter,
  type LogFilterFactory,
  type LogItem,
  type LogQuery,
} from "./event-log.ts";
import type { DashboardState } from "./dashboard-state.ts";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Where the page's files are: beside this module (src/dashboard/assets, or
 * dist/dashboard/assets when the build copied them), else in the checkout's
 * sources beside a build that did not.
 */
const ASSET_DIRS = [
  fileURLToPath(new URL("./assets/", import.meta.url)),
  fileURLToPath(new URL("../../src/dashboard/assets/", import.meta.url)),
];
const DAGRE = path.join(
  path.dirname(createRequire(import.meta.url).resolve("@dagrejs/dagre/package.json")),
  "dist/dagre.min.js",
);
const PAGE_FILES: Record<string, { file: string; type: string }> = {
  "/assets/app.js": { file: "app.js", type: "text/javascript" },
  "/assets/app.css": { file: "app.css", type: "text/css" },
  "/": { file: "index.html", type: "text/html" },
};
const ASSETS: Record<string, { type: string }> = {
  "/assets/app.js": { type: "text/javascript" },
  "/assets/app.css": { type: "text/css" },
  "/assets/dagre.min.js": { type: "text/javascript" },
};

/** The page's files by route, read once; an InfrastructureError naming what is missing. */
async function readPageFiles(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const dir of ASSET_DIRS) {
    try {
      for (const [route, f] of Object.entries(PAGE_FILES))
        files.set(route, await readFile(path.join(dir, f.file)));
      break;
    } catch {
      files.clear();
    }
  }
  if (files.size === 0)
    throw new InfrastructureError(
      `the dashboard's page is missing: none of ${ASSET_DIRS.join(", ")} holds index.html, app.js and app.css`,
      "run the dashboard from a checkout, or from a build that copied src/dashboard/assets",
    );
  files.set("/assets/dagre.min.js", await readFile(DAGRE));
  return files;
}

/** Paths the page routes itself (history API): they all get the page. */
const PAGE_ROUTES = /^\/(missions(\/[^/]+(\/tasks\/[^/]+)?)?|agents|approvals|events)?\/?$/;

export interface HttpServerOptions {
  state: DashboardState;
  actions: DashboardActions;
  filters: LogFilterFactory;
  token: string;
  log: Logger;
  /** Ms between SSE keep-alive comments. Default 15 s. */
  keepAliveMs?: number;
  /**
   * Answer only requests addressed to a loopback name (Host header): a web
   * page elsewhere cannot read the dashboard through a DNS name it rebinds
   * to 127.0.0.1. Set when listening on loopback.
   */
  loopbackOnly?: boolean;
}

const MAX_BODY = 16 * 1024;

export async function createHttpServer(opts: HttpServerOptions): Promise<Server> {
  const { state, log } = opts;
  const files = await readPageFiles();
  const page = files.get("/")!;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err: errorMessage(err), url: req.url }, "dashboard request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("X-Frame-Options", "DENY");
    if (opts.loopbackOnly && !isLoopbackHost(hostOf(req.headers.host))) {
      req.resume();
      return sendJson(res, 421, {
        error:
          "this dashboard listens on loopback and answers only to 127.0.0.1, [::1] or localhost",
      });
    }
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const p = url.pathname;

    if (req.method === "POST") return handleAction(req, res, p);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD, POST");
      return sendJson(res, 405, { error: `method ${req.method} not allowed` });
    }

    const asset = ASSETS[p];
    if (asset) {
      res.writeHead(200, {
        "Content-Type": `${asset.type}; charset=utf-8`,
        "Cache-Control": "no-cache",
      });
      res.end(files.get(p));
      return;
    }
    if (PAGE_ROUTES.test(p)) {
      const m = /^\/missions\/([^/]+)/.exec(p);
      // A mission nobody has heard of: the page says so; the status says so to a script.
      const unknown = m && !state.view.mission(decodeURIComponent(m[1]!), new Date());
      res.writeHead(unknown ? 404 : 200, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-cache",
      });
      res.end(page);
      return;
    }
    if (p === "/api/stream") return stream(req, res, url);
    if (p.startsWith("/api/")) {
      // A mission listed from the mission view only: its events are read before it is shown.
      const opened = /^\/api\/missions\/([^/]+)/.exec(p);
      if (!opened) return api(res, p, url);
      state.loadMission(decodeURIComponent(opened[1]!)).then(
        () => api(res, p, url),
        (err: unknown) =>
          sendJson(res, 503, { error: `the mission's events could not be read: ${String(err)}` }),
      );
      return;
    }
    sendJson(res, 404, { error: `no such page: ${p}` });
  }

  function api(res: ServerResponse, p: string, url: URL): void {
    const now = new Date();
    if (p === "/api/health") return sendJson(res, 200, { nats: state.nats });
    if (p === "/api/missions") return sendJson(res, 200, { missions: state.view.missions(now) });
    let m = /^\/api\/missions\/([^/]+)$/.exec(p);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      const mission = state.view.mission(id, now);
      return mission
        ? sendJson(res, 200, { mission })
        : sendJson(res, 404, { error: `no mission ${id} is known to this dashboard` });
    }
    m = /^\/api\/missions\/([^/]+)\/tasks\/([^/]+)$/.exec(p);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      const taskId = decodeURIComponent(m[2]!);
      const task = state.view.task(id, taskId);
      return task
        ? sendJson(res, 200, { mission_id: id, task })
        : sendJson(res, 404, { error: `no task ${taskId} in mission ${id}` });
    }
    if (p === "/api/agents") {
      return sendJson(res, 200, {
        replicas: state.view.replicas(),
        consumers: state.load.consumers,
        dead_letter_counts: state.load.deadLetters,
        dead_letters: state.view.deadLetters(),
      });
    }
    if (p === "/api/approvals") return sendJson(res, 200, { approvals: state.view.approvals() });
    if (p === "/api/events") {
      let filter: LogFilter;
      try {
        filter = opts.filters(logQuery(url));
      } catch (err) {
        return sendJson(res, 400, { error: errorMessage(err) });
      }
      const limit = Math.min(2000, Math.max(1, Number(url.searchParams.get("limit")) || 500));
      return sendJson(res, 200, { items: state.log.read(filter, limit) });
    }
    sendJson(res, 404, { error: `no such API: ${p}` });
  }

  function stream(req: IncomingMessage, res: ServerResponse, url: URL): void {
    let filter: LogFilter;
    try {
      filter = opts.filters(logQuery(url));
    } catch (err) {
      return sendJson(res, 400, { error: errorMessage(err) });
    }
    for (const item of state.log.all()) passes(filter, item); // learn the task → agent map
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    res.flushHeaders();
    const send = (type: string, data: unknown) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    // The browser reconnects a second after the stream ends (a dashboard restart).
    res.write("retry: 1000\n\n");
    send("nats", state.nats);
    const unsubscribe = state.subscribe({
      nats: (s) => send("nats", s),
      change: (c) => send("change", c),
      item: (item: LogItem) => {
        if (passes(filter, item)) send("log", item);
      },
    });
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), opts.keepAliveMs ?? 15_000);
    keepAlive.unref();
    req.on("close", () => {
      clearInterval(keepAlive);
      unsubscribe();
    });
  }

  async function handleAction(req: IncomingMessage, res: ServerResponse, p: string): Promise<void> {
    const approval = /^\/api\/approvals\/([^/]+)$/.exec(p);
    const cancel = /^\/api\/missions\/([^/]+)\/cancel$/.exec(p);
    if (!approval && !cancel) return sendJson(res, 404, { error: `no such action: ${p}` });
    // The token first: without it nothing is read, parsed or done.
    if (!tokenMatches(bearerToken(req.headers.authorization), opts.token)) {
      req.resume();
      res.setHeader("WWW-Authenticate", 'Bearer realm="swarm dashboard"');
      log.warn(
        { path: p, remote: req.socket.remoteAddress },
        "dashboard action refused: no valid token",
      );
      return sendJson(res, 401, {
        error:
          "this action needs the dashboard's token (printed at its start, or SWARM_DASHBOARD_TOKEN)",
      });
    }
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
      req.resume();
      return sendJson(res, 415, { error: "send the action as application/json" });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(await readBody(req));
    } catch (err) {
      return sendJson(res, 400, { error: `the body is not JSON: ${errorMessage(err)}` });
    }
    let decision: z.infer<typeof DecisionBody> | null = null;
    let cancelBody: z.infer<typeof CancelBody> | null = null;
    try {
      if (approval) decision = parse(DecisionBody, raw);
      else cancelBody = parse(CancelBody, raw);
    } catch (err) {
      return sendJson(res, 400, { error: errorMessage(err) });
    }
    try {
      if (approval) {
        const body = decision!;
        const id = decodeURIComponent(approval[1]!);
        const out = await opts.actions.decide(id, body.decision, body.reason?.trim() || null);
        log.info(
          {
            approval_id: id,
            decision: body.decision,
            reason: body.reason ?? null,
            remote: req.socket.remoteAddress,
          },
          "approval decided from the dashboard",
        );
        return sendJson(res, 200, out);
      }
      const body = cancelBody!;
      const id = decodeURIComponent(cancel![1]!);
      const out = await opts.actions.cancel(id, body.reason ?? "cancelled from the dashboard");
      log.info(
        { mission_id: id, remote: req.socket.remoteAddress },
        "mission cancel requested from the dashboard",
      );
      return sendJson(res, 202, out);
    } catch (err) {
      if (err instanceof BadInputError) return sendJson(res, 409, { error: err.message });
      log.error({ err: errorMessage(err), path: p }, "dashboard action failed");
      return sendJson(res, 503, { error: `the action could not be done: ${errorMessage(err)}` });
    }
  }

  return server;
}

/** The host name of a Host header (`127.0.0.1:7800` → `127.0.0.1`, `[::1]:7800` → `::1`). */
function hostOf(header: string | undefined): string {
  const h = (header ?? "").trim();
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1]!;
  return h.replace(/:\d+$/, "");
}

function logQuery(url: URL): LogQuery {
  const q: LogQuery = {};
  for (const k of ["mission", "agent", "type"] as const) {
    const v = url.searchParams.get(k)?.trim();
    if (v) q[k] = v;
  }
  return q;
}

function parse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new BadInputError(
      r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "),
    );
  return r.data;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
  });
  res.end(JSON.stringify(value));
}
