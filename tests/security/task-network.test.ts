/**
 * A `network: true` command gets its own network namespace (task-network.ts):
 * outbound through slirp4netns, nothing of the host. Each attack runs from
 * inside a command through the real shell tool (runShell in the bwrap
 * sandbox) and must fail; the same command with no sandbox must succeed, so
 * a check that can't fail shows up. No test traffic leaves this machine: the
 * outbound path is shown with a "remote" host that lives in another network
 * namespace of this machine, behind a veth pair.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { sandboxForAgent, type ShellSandbox } from "../../src/tools/sandbox.ts";
import { runShell, type ShellOptions } from "../../src/tools/shell.ts";
import {
  missingForTaskNetwork,
  namespaceResolvConf,
  NETNS_DIR,
  probeTaskNetwork,
  prohibitRoutes,
  SLIRP_GATEWAY,
  sweepStaleTaskNetworks,
  taskNetworkName,
  taskNetworkOwner,
} from "../../src/tools/task-network.ts";
import { startFakeOllama, textReply } from "../helpers/fake-ollama.ts";
import { startNatsServer, type NatsServerHandle } from "../helpers/nats-server.ts";
import { killAllSwarms } from "../helpers/swarm-process.ts";
import {
  assign,
  makeTask,
  newMission,
  processesMatching,
  spawnWorker,
  startBus,
  type Bus,
} from "../workers/worker-harness.ts";

let root: string;
let ws: string;
let netBoxed: ShellSandbox;
let noNetBoxed: ShellSandbox;
let nats: NatsServerHandle;

beforeAll(async () => {
  // This machine has slirp4netns and runs tests as root (scripts/lib/setup.sh installs it).
  expect(await probeTaskNetwork(), "task networks must work here for these tests").toEqual({
    ok: true,
  });
  root = await mkdtemp(path.join(os.tmpdir(), "squad-netns-"));
  ws = path.join(root, "mission");
  await mkdir(ws);
  // Exactly what a worker gives an agent's commands: the sandbox user, limits, cgroups
  // (sandboxForAgent refuses with a reason where bwrap can't work here).
  const base = {
    agent: "attacker",
    requested: "bwrap" as const,
    requestedBy: "the roster",
    workspaceRoot: root,
    log: pino({ level: "silent" }),
  };
  const withNet = await sandboxForAgent({ ...base, network: true });
  const without = await sandboxForAgent({ ...base, network: false });
  if (withNet?.kind !== "bwrap" || without?.kind !== "bwrap") throw new Error("bwrap expected");
  netBoxed = withNet;
  noNetBoxed = without;
  nats = await startNatsServer({ jetstream: false });
}, 60_000);

afterAll(async () => {
  await nats?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

function sh(command: string, sandbox?: ShellSandbox, extra: Partial<ShellOptions> = {}) {
  return runShell({
    command,
    cwd: ws,
    timeoutMs: 60_000,
    ...(sandbox ? { sandbox } : {}),
    ...extra,
  });
}

/**
 * One TCP connect to host:port by three clients a task could use: bash's
 * /dev/tcp, node and python3. Each prints `<tool> CONNECTED` or `<tool> FAILED`.
 */
function connectAll(host: string, port: number): string {
  const js = `const s=require("net").connect(${port},${JSON.stringify(host)});s.on("connect",()=>{console.log("node CONNECTED");process.exit(0)});s.on("error",e=>{console.log("node FAILED",e.code);process.exit(0)})`;
  const py = `import socket\ntry:\n  socket.create_connection((${JSON.stringify(host)},${port}),timeout=20); print("python CONNECTED")\nexcept OSError as e: print("python FAILED", e)`;
  return [
    `(timeout 20 bash -c 'exec 3<>/dev/tcp/${host}/${port}') 2>/dev/null && echo bash CONNECTED || echo bash FAILED`,
    `${JSON.stringify(process.execPath)} -e '${js}'`,
    `/usr/bin/python3 -c '${py}'`,
  ].join("\n");
}

function verdicts(output: string): string[] {
  return output
    .split("\n")
    .filter((l) => / (CONNECTED|FAILED)\b/.test(l))
    .map((l) => l.split(" ").slice(0, 2).join(" "));
}

const allFailed = ["bash FAILED", "node FAILED", "python FAILED"];
const allConnected = ["bash CONNECTED", "node CONNECTED", "python CONNECTED"];

/** Our namespaces that exist right now. */
async function ourNamespaces(): Promise<string[]> {
  const names = await readdir(NETNS_DIR).catch(() => [] as string[]);
  return names.filter((n) => taskNetworkOwner(n) === process.pid);
}

/** Live slirp4netns processes attached to one of our namespaces. */
async function ourSlirps(): Promise<number[]> {
  return processesMatching(path.join(NETNS_DIR, `squad-${process.pid}-`));
}

describe("a network: true command can't reach the host", () => {
  it("can't connect to the NATS server on 127.0.0.1", async () => {
    const r = await sh(connectAll("127.0.0.1", nats.port), netBoxed);
    expect(verdicts(r.output)).toEqual(allFailed);
    // The same attack from an unconfined command reaches it: the check above can fail.
    expect(verdicts((await sh(connectAll("127.0.0.1", nats.port))).output)).toEqual(allConnected);
  });

  it("can't talk to the model server on 127.0.0.1", async () => {
    const model = await startFakeOllama(() => textReply("hi"));
    try {
      const port = Number(new URL(model.url).port);
      const get = `(exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET /api/version HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3; echo)`;
      const r = await sh(`${get}\n${connectAll("127.0.0.1", port)}`, netBoxed);
      expect(r.output).not.toContain("HTTP/1.1 200");
      expect(verdicts(r.output)).toEqual(allFailed);
      expect((await sh(get)).output).toContain("HTTP/1.1 200");
    } finally {
      await model.close();
    }
  });

  it("can't reach a server on 0.0.0.0 through any of the host's addresses, nor through slirp's host alias", async () => {
    const server = http.createServer((_req, res) => res.end("host"));
    server.listen(0, "0.0.0.0");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    try {
      const addrs = Object.values(os.networkInterfaces())
        .flat()
        .filter((i) => i && !i.internal && i.family === "IPv4")
        .map((i) => i!.address);
      expect(addrs.length, "this machine has a non-loopback IPv4 address").toBeGreaterThan(0);
      // 10.0.2.3 is slirp's DNS forwarder: UDP port 53 only, no TCP to the host.
      for (const host of [...addrs, SLIRP_GATEWAY, "10.0.2.3"]) {
        const r = await sh(connectAll(host, port), netBoxed);
        expect(verdicts(r.output), `through ${host}: ${r.output}`).toEqual(allFailed);
      }
      for (const host of addrs) {
        expect(verdicts((await sh(connectAll(host, port))).output), `${host} unconfined`).toEqual(
          allConnected,
        );
      }
      // 10.0.2.2 is the host's loopback only with slirp's host loopback on: it is off, so
      // NATS and the model server are not there either.
      const viaAlias = await sh(connectAll(SLIRP_GATEWAY, nats.port), netBoxed);
      expect(verdicts(viaAlias.output)).toEqual(allFailed);
    } finally {
      server.close();
    }
  });

  it("can't reach the host over IPv6 either", async () => {
    const addrs = Object.values(os.networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal && i.family === "IPv6" && !i.address.startsWith("fe80:"))
      .map((i) => i!.address);
    if (addrs.length === 0) return; // this machine has no routable IPv6 address to attack
    const server = http.createServer((_req, res) => res.end("host"));
    server.listen(0, "::");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    try {
      for (const host of addrs) {
        const r = await sh(connectAll(host, port), netBoxed);
        expect(verdicts(r.output), `through ${host}: ${r.output}`).toEqual(allFailed);
        expect(verdicts((await sh(connectAll(host, port))).output)).toEqual(allConnected);
      }
    } finally {
      server.close();
    }
  });

  it("can't connect to the host's abstract unix sockets (they belong to the host's network namespace)", async () => {
    const name = `squad-abstract-${process.pid}`;
    const server = net.createServer((sock) => sock.end());
    server.listen(`\0${name}`);
    await once(server, "listening");
    try {
      const py = `import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect("\\0${name}"); print("python CONNECTED")\nexcept OSError as e: print("python FAILED", e)`;
      const cmd = `/usr/bin/python3 -c '${py}'`;
      expect(verdicts((await sh(cmd, netBoxed)).output)).toEqual(["python FAILED"]);
      expect(verdicts((await sh(cmd)).output)).toEqual(["python CONNECTED"]);
    } finally {
      server.close();
    }
  });

  it("can't change its routes or interfaces to undo that", async () => {
    const host = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === "IPv4")!.address;
    const r = await sh(
      [
        `ip route del prohibit ${host}/32`,
        "ip route flush table main",
        "ip link set tap0 down",
        "ip addr add 10.0.2.200/24 dev tap0",
        `ip route show ${host}`,
      ].join("; "),
      netBoxed,
    );
    expect(r.output.match(/Operation not permitted/g)?.length).toBeGreaterThanOrEqual(4);
    expect(r.output).toContain(`prohibit ${host}`);
  });
});

describe("what a network: true command does get", () => {
  it("a namespace of its own with a default route through slirp's gateway, which answers", async () => {
    const r = await sh(
      [
        "id -u",
        "ip -o -4 addr show dev tap0",
        "ip route show default",
        "cat /etc/resolv.conf",
        // The SYN goes out on tap0: the gateway must answer ARP (and refuses, loopback off).
        `(exec 3<>/dev/tcp/${SLIRP_GATEWAY}/9) 2>/dev/null`,
        `ip neigh show ${SLIRP_GATEWAY}`,
      ].join("; "),
      netBoxed,
    );
    // The command is the sandbox user, not root (when the worker is root).
    if (process.getuid?.() === 0) expect(r.output.split("\n")[0]).not.toBe("0");
    expect(r.output).toMatch(/tap0\s+inet 10\.0\.2\.100\/24/);
    expect(r.output).toContain(`default via ${SLIRP_GATEWAY} dev tap0`);
    expect(r.output).toContain("nameserver 10.0.2.3");
    // slirp4netns's MAC for 10.0.2.2: a live user-mode network stack behind tap0.
    expect(r.output).toMatch(
      /10\.0\.2\.2 dev tap0 lladdr 52:55:0a:00:02:02 (REACHABLE|STALE|DELAY)/,
    );
  });

  describe("an outbound connection to a machine that is not the host", () => {
    // The "remote machine": another network namespace of this host, behind a veth pair,
    // so no test traffic leaves this machine. 198.51.100.0/30 is TEST-NET-2.
    const remoteNs = `squadtest-remote-${process.pid}`;
    const veth = `sqt${process.pid % 1_000_000}`;
    let remote: ChildProcess | undefined;
    let remotePort = 0;

    const ip = (...args: string[]) =>
      new Promise<void>((resolve, reject) => {
        const c = spawn("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        c.stderr.on("data", (b: Buffer) => (err += b.toString()));
        c.once("error", reject);
        c.once("close", (code) =>
          code === 0 ? resolve() : reject(new Error(`ip ${args.join(" ")}: ${err}`)),
        );
      });

    beforeAll(async () => {
      await ip("netns", "add", remoteNs);
      await ip("link", "add", `${veth}h`, "type", "veth", "peer", "name", `${veth}r`);
      await ip("link", "set", `${veth}r`, "netns", remoteNs);
      await ip("addr", "add", "198.51.100.2/30", "dev", `${veth}h`);
      await ip("link", "set", `${veth}h`, "up");
      await ip("-n", remoteNs, "addr", "add", "198.51.100.1/30", "dev", `${veth}r`);
      // Where a cloud machine's metadata service would be (169.254.169.254): link-local.
      await ip("addr", "add", "169.254.77.2/24", "dev", `${veth}h`);
      await ip("-n", remoteNs, "addr", "add", "169.254.77.1/24", "dev", `${veth}r`);
      await ip("-n", remoteNs, "link", "set", `${veth}r`, "up");
      const js = `require("http").createServer((q,s)=>s.end("remote says hi")).listen(0,"0.0.0.0",function(){console.log(this.address().port)})`;
      remote = spawn("ip", ["netns", "exec", remoteNs, process.execPath, "-e", js], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const [line] = (await once(createInterface({ input: remote.stdout! }), "line")) as [string];
      remotePort = Number(line);
    }, 30_000);

    afterAll(async () => {
      remote?.kill("SIGKILL");
      // Deleting the namespace destroys both ends of the veth pair.
      await ip("netns", "del", remoteNs).catch(() => {});
      await ip("link", "del", `${veth}h`).catch(() => {});
    });

    it("goes out through slirp4netns, while the host's own new address stays unreachable", async () => {
      const get = (host: string) =>
        `(exec 3<>/dev/tcp/${host}/${remotePort} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3) 2>&1 | tail -1; echo`;
      const r = await sh(get("198.51.100.1"), netBoxed);
      expect(r.output).toContain("remote says hi");
      // 198.51.100.2 is the host's end of the pair: a host address, so prohibited.
      const own = await sh(connectAll("198.51.100.2", remotePort), netBoxed);
      expect(verdicts(own.output)).toEqual(allFailed);
      // A link-local neighbour (a metadata service) is refused, though the host reaches it.
      const metadata = await sh(connectAll("169.254.77.1", remotePort), netBoxed);
      expect(verdicts(metadata.output)).toEqual(allFailed);
      expect(verdicts((await sh(connectAll("169.254.77.1", remotePort))).output)).toEqual(
        allConnected,
      );
      // Without network: true, not even the remote machine.
      const none = await sh(get("198.51.100.1"), noNetBoxed);
      expect(none.output).not.toContain("remote says hi");
    });
  });
});

describe("on the default launch: a builder task (network: true) run by a real worker", () => {
  let bus: Bus | undefined;
  afterAll(async () => {
    await killAllSwarms();
    await bus?.close();
  });

  it("can't reach the swarm's own NATS server, but has its outbound route", async () => {
    bus = await startBus();
    const worker = await spawnWorker(bus, "builder");
    expect(worker.stderr()).toMatch(/network: true commands get their own network namespace/);
    const mission = newMission("netns");
    const port = bus.server.port;
    await assign(
      bus,
      mission,
      makeTask({
        id: "attack",
        agent: "builder",
        run: [
          `(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo BUS-REACHED || echo BUS-BLOCKED; ip route show default`,
        ],
      }),
    );
    const done = await bus.events.result(mission, "attack", 60_000);
    expect(done.type).toBe("task_completed");
    const output = done.payload.result.steps[0]?.output ?? "";
    expect(output).toContain("BUS-BLOCKED");
    expect(output).toContain(`default via ${SLIRP_GATEWAY} dev tap0`);
    // The worker deleted the command's namespace (it is named after the worker's pid).
    const left = (await readdir(NETNS_DIR)).filter((n) => taskNetworkOwner(n) === worker.pid);
    expect(left).toEqual([]);
    worker.kill("SIGTERM");
    await worker.exited;
  });
});

describe("where task networks can't work", () => {
  it("a network: true command does not run at all, and says why (never on the host's network)", async () => {
    // A worker that is not root can't make the namespace: run runShell as uid 65534.
    const shell = path.resolve(import.meta.dirname, "../../src/tools/shell.ts");
    const js = `const { runShell } = await import(${JSON.stringify(shell)});
const sandbox = { kind: "bwrap", bin: "/usr/bin/bwrap", workspaceRoot: "/nonexistent", hide: [], expose: [], network: true };
console.log(JSON.stringify(await runShell({ command: "echo RAN", cwd: "/", timeoutMs: 20000, sandbox })));`;
    const child = spawn(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        "--input-type=module",
        "-e",
        js,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    await once(child, "close");
    const r = JSON.parse(line) as { exit_code: number | null; output: string };
    expect(r.exit_code).toBeNull();
    expect(r.output).not.toContain("RAN");
    expect(r.output).toBe(
      "failed to start the command: network: true, but a task can't get its own network here: " +
        "the worker runs as uid 65534, and only root may create the network namespace a task gets (run the worker as root)\n",
    );
  });
});

describe("network: false is unchanged", () => {
  it("has no network at all: only a loopback, nothing reachable, no namespace made for it", async () => {
    const r = await sh(
      `ip -br link; ${connectAll("127.0.0.1", nats.port)}\n${connectAll(SLIRP_GATEWAY, nats.port)}\nls ${NETNS_DIR} 2>&1`,
      noNetBoxed,
    );
    expect(r.output.split("\n")[0]).toMatch(/^lo\s/);
    expect(r.output.split("\n")[1]).not.toMatch(/^\w+\s+(UP|DOWN|UNKNOWN)\s/); // no second interface
    expect(verdicts(r.output)).toEqual([...allFailed, ...allFailed]);
    expect(await ourNamespaces()).toEqual([]);
  });
});

describe("nothing is left behind", () => {
  it("deletes the namespace and ends slirp4netns when the command ends", async () => {
    const r = await sh(`ls ${NETNS_DIR} 2>&1; ip -br link show tap0`, netBoxed);
    expect(r.output).toMatch(/tap0\s+UNKNOWN/);
    // /var/run is hidden in the sandbox: the command can't see or enter other namespaces.
    expect(r.output).toMatch(/No such file or directory/);
    expect(await ourNamespaces()).toEqual([]);
    expect(await ourSlirps()).toEqual([]);
  });

  it("also when the command is aborted mid-run", async () => {
    const marker = `netns-abort-${process.pid}`;
    const controller = new AbortController();
    const running = sh(`bash -c 'sleep 300; :' ${marker}`, netBoxed, {
      signal: controller.signal,
    });
    // Wait for the event (the command runs inside its namespace), not for time.
    await expect.poll(() => processesMatching(marker), { timeout: 30_000 }).not.toEqual([]);
    expect(await ourNamespaces()).toHaveLength(1);
    expect(await ourSlirps()).toHaveLength(1);
    controller.abort();
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(await processesMatching(marker)).toEqual([]);
    expect(await ourNamespaces()).toEqual([]);
    expect(await ourSlirps()).toEqual([]);
  });

  it("when the worker is killed: slirp4netns exits by itself and the next worker's sweep deletes the namespace", async () => {
    const mod = path.resolve(import.meta.dirname, "../../src/tools/task-network.ts");
    const js = `const { openTaskNetwork } = await import(${JSON.stringify(mod)}); const n = await openTaskNetwork(); console.log(n.name); setInterval(() => {}, 1e6);`;
    const worker = spawn(process.execPath, ["--input-type=module", "-e", js], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = once(worker, "exit");
    let name = "";
    try {
      [name] = (await once(createInterface({ input: worker.stdout }), "line")) as [string];
      // Its first namespace after the probe's (the probe opens and closes one).
      expect(name).toBe(taskNetworkName(worker.pid!, 2));
      expect(await processesMatching(path.join(NETNS_DIR, name))).toHaveLength(1);
    } finally {
      worker.kill("SIGKILL");
      await exited;
    }
    const slirps = () => processesMatching(path.join(NETNS_DIR, name));
    // Its --exit-fd pipe closed with the worker.
    await expect.poll(slirps, { timeout: 30_000 }).toEqual([]);
    // Any worker starting now sweeps it (tests in other files start workers too): whichever
    // sweeps first, the dead worker's namespace is gone after a sweep.
    await sweepStaleTaskNetworks();
    expect(await readdir(NETNS_DIR)).not.toContain(name);
  });
});

describe("task network policy (pure)", () => {
  const ok = {
    platform: "linux" as const,
    uid: 0,
    bins: { slirp4netns: true, ip: true, unshare: true },
    tun: true,
  };
  it.each([
    [{}, null],
    [{ platform: "darwin" as const }, /need Linux \(this is darwin\)/],
    [{ uid: 1000 }, /runs as uid 1000, and only root may create/],
    [{ bins: { ...ok.bins, slirp4netns: false } }, /apt-get install slirp4netns/],
    [{ bins: { ...ok.bins, ip: false } }, /apt-get install iproute2/],
    [{ tun: false }, /\/dev\/net\/tun is missing/],
  ])("says why task networks are unavailable: %o", (change, reason) => {
    const r = missingForTaskNetwork({ ...ok, ...change });
    if (reason === null) expect(r).toBeNull();
    else expect(r).toMatch(reason);
  });

  it("prohibits every host address but loopback, and link-local IPv4 (cloud metadata)", () => {
    const info = (address: string, family: "IPv4" | "IPv6", internal = false) =>
      ({ address, family, internal, netmask: "", mac: "", cidr: null }) as os.NetworkInterfaceInfo;
    expect(
      prohibitRoutes({
        lo: [info("127.0.0.1", "IPv4", true), info("::1", "IPv6", true)],
        eth0: [info("192.0.2.2", "IPv4"), info("fd00::2", "IPv6"), info("fe80::1%eth0", "IPv6")],
        docker0: [info("172.17.0.1", "IPv4")],
      }),
    ).toEqual([
      "route add prohibit 169.254.0.0/16",
      "route add prohibit 172.17.0.1/32",
      "route add prohibit 192.0.2.2/32",
      "route add prohibit fd00::2/128",
      "route add prohibit fe80::1/128",
    ]);
  });

  it("names namespaces so a worker recognises its own and a dead worker's", () => {
    expect(taskNetworkName(4242, 7)).toBe("squad-4242-7");
    expect(taskNetworkOwner("squad-4242-7")).toBe(4242);
    expect(taskNetworkOwner("squad-x-1")).toBeNull();
    expect(taskNetworkOwner("cni-1234")).toBeNull();
  });

  it("points DNS at slirp's forwarder and keeps the host's search domains", () => {
    expect(
      namespaceResolvConf(
        "# generated\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0\n",
      ),
    ).toBe("search corp.example\noptions edns0\nnameserver 10.0.2.3\n");
  });
});
