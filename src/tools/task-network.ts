/**
 * The network of a `network: true` command: its own network namespace with
 * outbound access through user-mode NAT (Debian's `slirp4netns`), and no way
 * back to the host.
 *
 * - `ip netns add squad-<pid>-<n>` (root) makes the namespace; the command
 *   enters it with `ip netns exec` before it drops to the sandbox user, so
 *   the namespace belongs to the host's user namespace and nothing the
 *   command can become (an unprivileged uid, root of its own user
 *   namespace) may change its routes or interfaces.
 * - slirp4netns `--disable-host-loopback` is its only way out: the host's
 *   127.0.0.1 (NATS, the model server) is not reachable through slirp's
 *   gateway 10.0.2.2. It runs in a private mount namespace (its
 *   `--enable-sandbox` unmounts what would otherwise propagate back and
 *   break the namespace's mount point) with `--enable-seccomp`, so a packet
 *   that exploits it meets a process without capabilities or a file system.
 * - slirp connects out from the host's own network namespace, so a server
 *   listening on 0.0.0.0 would still answer on the host's other addresses:
 *   every address of every interface gets a `prohibit` route inside the
 *   namespace (connect fails at once with EACCES).
 * - DNS: the namespace's resolv.conf names slirp's forwarder 10.0.2.3 (a
 *   host resolver on 127.0.0.53 would be the command's own loopback).
 *
 * One namespace per command (see docs/security.md: ~60-100 ms here, small
 * next to what needs the network). Nothing outlives it: close() kills
 * slirp4netns and deletes the namespace; if the worker dies first,
 * slirp4netns exits when its `--exit-fd` pipe closes, and the next worker's
 * sweepStaleTaskNetworks() deletes namespaces whose worker pid is gone.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { access, constants, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { InfrastructureError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** An open namespace for one command. */
export interface TaskNetwork {
  /** `squad-<pid>-<n>`, under /var/run/netns. */
  name: string;
  /** Put before the sandboxed command's argv: runs it inside the namespace (exec, same pid). */
  argvPrefix: string[];
  /** Kills slirp4netns and deletes the namespace; idempotent, never throws. */
  close(): Promise<void>;
}

export type TaskNetworkProbe = { ok: true } | { ok: false; reason: string };

/** A `network: true` command can't get its own network here; it must not run (never on the host's). */
export class TaskNetworkUnavailableError extends InfrastructureError {
  override readonly name: string = "TaskNetworkUnavailableError";
}

/** Where `ip netns` keeps its namespaces (iproute2's NETNS_RUN_DIR). */
export const NETNS_DIR = "/var/run/netns";
/** Per-namespace files `ip netns exec` binds over /etc (our resolv.conf). */
const NETNS_ETC_DIR = "/etc/netns";
const NAME_PREFIX = "squad-";
/** slirp4netns's defaults: the gateway (host, disabled), its DNS forwarder, the namespace's address. */
export const SLIRP_GATEWAY = "10.0.2.2";
export const SLIRP_DNS = "10.0.2.3";
const STEP_TIMEOUT_MS = 10_000;

/** The name of the `n`th namespace of worker process `pid`. */
export function taskNetworkName(pid: number, n: number): string {
  return `${NAME_PREFIX}${pid}-${n}`;
}

/** The worker pid of one of our namespace names, or null for anyone else's. */
export function taskNetworkOwner(name: string): number | null {
  const m = /^squad-(\d+)-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Link-local IPv4: never an internet destination, and where cloud machines
 * serve their metadata and credentials (169.254.169.254).
 */
export const PROHIBITED_RANGES = ["169.254.0.0/16"];

/**
 * What a command must not reach, as `ip -batch` lines (pure): every address
 * of every interface but loopback (inside the namespace 127.0.0.1 is the
 * command's own), and PROHIBITED_RANGES. IPv6 too, though slirp4netns gives
 * the namespace no IPv6 route: the routes hold whatever else changes.
 */
export function prohibitRoutes(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const addrs = new Set<string>();
  for (const infos of Object.values(interfaces)) {
    for (const i of infos ?? []) {
      if (i.internal) continue;
      // A scoped link-local address (fe80::1%eth0) is routed by its address alone.
      const addr = i.address.replace(/%.*$/, "");
      addrs.add(i.family === "IPv6" ? `${addr}/128` : `${addr}/32`);
    }
  }
  return [...PROHIBITED_RANGES, ...[...addrs].sort()].map((a) => `route add prohibit ${a}`);
}

/** The namespace's resolv.conf (pure): the host's search and options lines, slirp's forwarder. */
export function namespaceResolvConf(host: string): string {
  const kept = host.split("\n").filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return [...kept, `nameserver ${SLIRP_DNS}`, ""].join("\n");
}

let probed: Promise<TaskNetworkProbe> | undefined;

/**
 * Can `network: true` commands get their own network here? Checks what it
 * needs, then opens and closes one namespace. Once per process. The reason
 * says what is missing and how to get it.
 */
export function probeTaskNetwork(): Promise<TaskNetworkProbe> {
  probed ??= runProbe();
  return probed;
}

async function runProbe(): Promise<TaskNetworkProbe> {
  const missing = await missingRequirement();
  if (missing) return { ok: false, reason: missing };
  try {
    const net = await createTaskNetwork();
    await net.close();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** What this machine has that task networks need (gathered by the probe). */
export interface TaskNetworkFacts {
  platform: NodeJS.Platform;
  uid: number;
  /** Which of slirp4netns, ip, unshare are on PATH. */
  bins: { slirp4netns: boolean; ip: boolean; unshare: boolean };
  tun: boolean;
}

/** Why task networks can't work with these facts, or null (pure): the first thing missing, and the fix. */
export function missingForTaskNetwork(f: TaskNetworkFacts): string | null {
  if (f.platform !== "linux") return `network namespaces need Linux (this is ${f.platform})`;
  if (f.uid !== 0) {
    return `the worker runs as uid ${f.uid}, and only root may create the network namespace a task gets (run the worker as root)`;
  }
  if (!f.bins.slirp4netns) return "slirp4netns is not installed (apt-get install slirp4netns)";
  if (!f.bins.ip) return "ip is not installed (apt-get install iproute2)";
  if (!f.bins.unshare) return "unshare is not installed (apt-get install util-linux)";
  if (!f.tun) return "/dev/net/tun is missing (in a container: --device /dev/net/tun)";
  return null;
}

async function missingRequirement(): Promise<string | null> {
  const tun = await stat("/dev/net/tun").catch(() => null);
  return missingForTaskNetwork({
    platform: process.platform,
    uid: typeof process.getuid === "function" ? process.getuid() : -1,
    bins: {
      slirp4netns: (await findBin("slirp4netns")) !== undefined,
      ip: (await findBin("ip")) !== undefined,
      unshare: (await findBin("unshare")) !== undefined,
    },
    tun: tun?.isCharacterDevice() ?? false,
  });
}

let opened = 0;

/**
 * A namespace for one command, or TaskNetworkUnavailableError with the
 * probe's reason (the caller must then not run the command at all).
 */
export async function openTaskNetwork(): Promise<TaskNetwork> {
  const probe = await probeTaskNetwork();
  if (!probe.ok) {
    throw new TaskNetworkUnavailableError(
      `network: true, but a task can't get its own network here: ${probe.reason}`,
      "install slirp4netns and run the worker as root, or set policy.network: false (no network at all)",
    );
  }
  return createTaskNetwork();
}

async function createTaskNetwork(): Promise<TaskNetwork> {
  const name = taskNetworkName(process.pid, ++opened);
  const ip = (await findBin("ip")) ?? "ip";
  let slirp: ChildProcess | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    // The namespace's mount can go while slirp4netns still holds it: both at once.
    closing ??= Promise.all([
      slirp ? stopProcess(slirp) : undefined,
      run(ip, ["netns", "del", name]),
      rm(path.join(NETNS_ETC_DIR, name), { recursive: true, force: true }),
    ]).then(() => undefined);
    return closing;
  };
  try {
    await must(ip, ["netns", "add", name], "ip netns add");
    const etc = path.join(NETNS_ETC_DIR, name);
    await mkdir(etc, { recursive: true });
    const hostResolv = await readFile("/etc/resolv.conf", "utf8").catch(() => "");
    await writeFile(path.join(etc, "resolv.conf"), namespaceResolvConf(hostResolv));
    slirp = await startSlirp(name);
    const routes = prohibitRoutes(os.networkInterfaces());
    await must(ip, ["-n", name, "-batch", "-"], "ip route add prohibit", routes.join("\n") + "\n");
    return { name, argvPrefix: [ip, "netns", "exec", name], close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * slirp4netns attached to the namespace, configured (tap0 10.0.2.100, the
 * default route): resolves once it says so on --ready-fd. Its --exit-fd is a
 * pipe only this process holds: when the worker dies, slirp4netns exits.
 */
async function startSlirp(name: string): Promise<ChildProcess> {
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "slirp4netns",
      "--configure",
      "--mtu=65520",
      "--disable-host-loopback",
      "--enable-sandbox",
      "--enable-seccomp",
      "--ready-fd=3",
      "--exit-fd=4",
      "--netns-type=path",
      path.join(NETNS_DIR, name),
      "tap0",
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  let said = "";
  child.stderr?.on("data", (b: Buffer) => {
    if (said.length < 4096) said += b.toString();
  });
  const ready = child.stdio[3];
  let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready after ${STEP_TIMEOUT_MS} ms`), STEP_TIMEOUT_MS);
    function fail(why: string) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      const out = said.replace(/WARNING: Support for seccomp is experimental\n?/, "").trim();
      reject(new Error(`slirp4netns ${why}${out ? `: ${out}` : ""}`));
    }
    ready?.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("error", (err) => fail(`could not start: ${err.message}`));
    onExit = (code, signal) => fail(`exited (${signal ?? `code ${code}`})`);
    child.once("exit", onExit);
  });
  if (onExit) child.off("exit", onExit);
  // Our end of the exit pipe stays open until stopProcess(); nothing else may keep the loop alive.
  for (const s of [child.stderr, ready, child.stdio[4]])
    (s as { unref?: () => void } | null)?.unref?.();
  child.unref();
  return child;
}

/** Ends slirp4netns: close its exit pipe (it leaves by itself), then SIGTERM/SIGKILL if it lingers. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  (child.stdio[4] as NodeJS.WritableStream | null)?.end();
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 2000);
  await exited;
  clearTimeout(killer);
}

/**
 * At a worker's start, for an agent with `network: true`: sweeps what dead
 * workers left, probes, and says in the log whether its commands will get a
 * network (and if not, that they will fail, and why).
 */
export async function prepareTaskNetworks(agent: string, log: Logger): Promise<TaskNetworkProbe> {
  const swept = await sweepStaleTaskNetworks();
  if (swept.length) log.warn({ agent, swept }, "deleted network namespaces left by dead workers");
  const probe = await probeTaskNetwork();
  if (probe.ok) {
    log.info(
      { agent },
      "network: true commands get their own network namespace (outbound only, no host)",
    );
  } else {
    log.error(
      { agent, reason: probe.reason },
      `NO TASK NETWORK: ${probe.reason}. This agent's commands will fail rather than use the host's network; ` +
        "install slirp4netns and run the worker as root, or set policy.network: false.",
    );
  }
  return probe;
}

/**
 * Deletes the namespaces (and their slirp4netns) of workers that are gone:
 * left behind when a worker was killed before it could close them. Returns
 * the names deleted. Called when a worker starts.
 */
export async function sweepStaleTaskNetworks(): Promise<string[]> {
  const names = await readdir(NETNS_DIR).catch(() => [] as string[]);
  const stale = names.filter((n) => {
    const pid = taskNetworkOwner(n);
    return pid !== null && pid !== process.pid && !pidAlive(pid);
  });
  if (!stale.length) return [];
  await killSlirpsOf(stale);
  const ip = (await findBin("ip")) ?? "ip";
  const deleted: string[] = [];
  for (const name of stale) {
    const r = await run(ip, ["netns", "del", name]);
    await rm(path.join(NETNS_ETC_DIR, name), { recursive: true, force: true });
    if (r.code === 0) deleted.push(name);
  }
  return deleted;
}

/** slirp4netns processes still attached to one of `names` (their worker died with --exit-fd open elsewhere). */
async function killSlirpsOf(names: string[]): Promise<void> {
  const paths = new Set(names.map((n) => path.join(NETNS_DIR, n)));
  for (const pid of (await readdir("/proc").catch(() => [] as string[])).filter((d) =>
    /^\d+$/.test(d),
  )) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (path.basename(argv[0] ?? "") !== "slirp4netns") continue;
    if (argv.some((a) => paths.has(a))) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function findBin(name: string): Promise<string | undefined> {
  for (const dir of [
    ...(process.env.PATH ?? "").split(":"),
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
  ]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

/** Runs a short root-side command to its end, bounded; never throws. */
function run(
  file: string,
  args: string[],
  input?: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let output = "";
    const take = (b: Buffer) => {
      if (output.length < 4096) output += b.toString();
    };
    child.stdout?.on("data", take);
    child.stderr?.on("data", take);
    const timer = setTimeout(() => child.kill("SIGKILL"), STEP_TIMEOUT_MS);
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: err.message });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function must(file: string, args: string[], what: string, input?: string): Promise<void> {
  const r = await run(file, args, input);
  if (r.code !== 0) throw new Error(`${what} failed: ${r.output.trim() || `exit code ${r.code}`}`);
}
