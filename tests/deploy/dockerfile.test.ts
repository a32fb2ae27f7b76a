/**
 * The Dockerfile and .dockerignore, checked by structure (no container
 * runtime on these machines): the runtime stage runs as a non-root user,
 * copies only what runs (each path exists in the repository), sets
 * NODE_ENV=production, has a HEALTHCHECK against the processes' /healthz
 * and OCI labels, and builds from a pinned base; .dockerignore keeps
 * secrets, tests and local state out of the build context.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/swarm-process.ts";

const dockerfile = readFileSync(path.join(REPO_ROOT, "Dockerfile"), "utf8");
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const stages: string[][] = [];
for (const line of instructions) {
  if (/^FROM /i.test(line)) stages.push([]);
  stages.at(-1)?.push(line);
}
const runtime = stages.at(-1)!;

describe("the Dockerfile", () => {
  it("builds every stage from one pinned base: an exact Node and Debian release, never a floating tag", () => {
    const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(arg).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/);
    for (const stage of stages) expect(stage[0]).toMatch(/^FROM \$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it("runs as a non-root user with NODE_ENV=production", () => {
    const users = runtime.filter((l) => l.startsWith("USER "));
    expect(users.at(-1)).toMatch(/^USER (?!root\b|0\b)\S+/);
    expect(runtime.join("\n")).toMatch(/^ENV .*NODE_ENV=production/m);
  });

  it("copies only what runs, each path present in the repository", () => {
    const copies = runtime.filter((l) => l.startsWith("COPY "));
    expect(copies.some((l) => /^COPY \.\s/.test(l))).toBe(false);
    for (const c of copies.filter((l) => !l.includes("--from="))) {
      const src = c.split(/\s+/)[1]!;
      expect(existsSync(path.join(REPO_ROOT, src)), `${src} exists`).toBe(true);
      expect(src).not.toMatch(/^(src|tests|scripts|\.env)/);
    }
    expect(copies.join("\n")).toMatch(/--from=build \/app\/dist/);
  });

  it("runs only scripts that exist in the repository (a moved file breaks the build)", () => {
    const scripts = instructions.filter((l) => /^RUN node /.test(l)).map((l) => l.split(/\s+/)[2]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) expect(existsSync(path.join(REPO_ROOT, s)), `${s} exists`).toBe(true);
  });

  it("installs what the processes run: git (mission repositories), the sandbox's tools", () => {
    const installed = runtime
      .filter((l) => /^RUN apt-get/.test(l))
      .join(" ")
      .split(/\s+/);
    for (const pkg of [
      "git",
      "bubblewrap",
      "util-linux",
      "slirp4netns",
      "iproute2",
      "ca-certificates",
    ])
      expect(installed, pkg).toContain(pkg);
  });

  it("has a HEALTHCHECK on /healthz and OCI labels", () => {
    const health = runtime.find((l) => l.startsWith("HEALTHCHECK "));
    expect(health).toMatch(/\/healthz/);
    expect(runtime.join("\n")).toMatch(/SWARM_HEALTH_PORT=\d+/);
    const labels = runtime.filter((l) => l.startsWith("LABEL ")).join(" ");
    for (const key of ["title", "description", "version", "licenses"])
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
  });
});

describe(".dockerignore", () => {
  const ignored = readFileSync(path.join(REPO_ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  it("keeps secrets, tests, logs and local state out of the build context", () => {
    for (const p of [
      ".env",
      ".env.*",
      "tests",
      "*.log",
      ".swarm",
      ".tools",
      "node_modules",
      ".git",
    ])
      expect(ignored).toContain(p);
  });
  it("lets in everything the Dockerfile copies", () => {
    const copied = instructions
      .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const src of copied) {
      const excluded = ignored.some(
        (p) => !p.startsWith("!") && (p === src || src.startsWith(`${p}/`)),
      );
      const reincluded = ignored.includes(`!${src}`);
      expect(!excluded || reincluded, `${src} reaches the build`).toBe(true);
    }
  });
});
