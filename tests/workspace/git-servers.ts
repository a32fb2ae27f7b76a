/**
 * Real git remotes on 127.0.0.1 for delivery tests: `git daemon` (git://,
 * anonymous push enabled) and `git http-backend` behind a small HTTP server
 * that asks for Basic authentication (so a credential really is needed).
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { execa } from "execa";
import { freePort } from "../helpers/nats-server.ts";

export interface GitServer {
  url(repo: string): string;
  stop(): Promise<void>;
}

const ISOLATED = { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };

/** Ready when a client can list `probeRepo`'s refs: polled on the condition itself, not on time. */
async function untilServes(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await execa("git", ["ls-remote", url], { env: ISOLATED, reject: false });
    if (r.exitCode === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`git server at ${url} never answered`);
}

export async function startGitDaemon(basePath: string, probeRepo: string): Promise<GitServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "git",
    [
      "daemon",
      "--reuseaddr",
      "--export-all",
      "--enable=receive-pack",
      "--listen=127.0.0.1",
      `--port=${port}`,
      `--base-path=${basePath}`,
      "--log-destination=stderr",
      basePath,
    ],
    { env: { ...process.env, ...ISOLATED }, stdio: ["ignore", "ignore", "pipe"] },
  );
  child.stderr?.resume();
  const server: GitServer = {
    url: (repo) => `git://127.0.0.1:${port}/${repo}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
  await untilServes(server.url(probeRepo));
  return server;
}

/** `git http-backend` as CGI, every request needing `user:password` (Basic). */
export async function startGitHttp(
  projectRoot: string,
  user: string,
  password: string,
): Promise<GitServer & { requests: () => number }> {
  let requests = 0;
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="squad-test"' });
      res.end("authentication required\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        ...ISOLATED,
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ""),
        REQUEST_METHOD: req.method ?? "GET",
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
        ...(req.headers["content-encoding"]
          ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] }
          : {}),
        ...(req.headers["git-protocol"]
          ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) }
          : {}),
        REMOTE_USER: user,
        REMOTE_ADDR: "127.0.0.1",
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on("end", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (repo) => `http://127.0.0.1:${port}/${repo}`,
    requests: () => requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
