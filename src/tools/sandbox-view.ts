/**
 * What a sandboxed command sees of the host: an allow-list, not the host
 * minus a deny-list. Binaries and libraries (/usr, and /bin, /lib*, /sbin as
 * the host has them: symlinks into /usr on a merged-/usr system), a minimal
 * /etc (no shadow files, no private keys, no package-manager credentials),
 * toolchains on the commands' PATH that live elsewhere, all read-only; plus
 * the task's own workspace read-write, and private /dev, /proc and /tmp.
 * Not there: /root, /home, /var (debconf's passwords), /run, /sys, /srv,
 * other missions, the swarm's state directory (NATS credentials).
 */
import { lstat, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";

/** One thing made visible: a read-only bind of the same path, or a symlink as on the host. */
export type ViewEntry = { bind: string } | { symlink: string; target: string };

/** Top-level system directories: bound read-only, or recreated as the symlinks they are. */
export const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * The /etc that shells, libc (users, hosts, DNS, locale, time zone, the
 * loader's cache), TLS clients (CA certificates), python, java, perl, git
 * and make need. Absent on the host: skipped. Deliberately missing: shadow,
 * gshadow, sudoers, ssl/private, ssh host keys, npmrc/pip.conf/gitconfig
 * (they may hold registry or credential-helper settings).
 */
export const ETC_ALLOWED = [
  "passwd",
  "group",
  "hosts",
  "hostname",
  "resolv.conf",
  "nsswitch.conf",
  "host.conf",
  "gai.conf",
  "protocols",
  "services",
  "networks",
  "localtime",
  "timezone",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "ld.so.preload",
  "ssl/certs",
  "ssl/openssl.cnf",
  "ca-certificates",
  "ca-certificates.conf",
  "alternatives",
  "os-release",
  "debian_version",
  "bash.bashrc",
  "profile",
  "profile.d",
  "inputrc",
  "shells",
  "mime.types",
  "magic",
  "magic.mime",
  "mtab",
  "python3",
  "python3.11",
  "python3.12",
  "perl",
  "java-17-openjdk",
  "java-21-openjdk",
  "maven",
  "terminfo",
  "environment",
  "locale.alias",
  "wgetrc",
].map((f) => `/etc/${f}`);

/** The host's entries among `paths`: symlinks as symlinks, the rest bound (I/O: lstat, readlink). */
export async function hostEntries(paths: string[]): Promise<ViewEntry[]> {
  const out: ViewEntry[] = [];
  for (const p of paths) {
    const s = await lstat(p).catch(() => null);
    if (!s) continue;
    if (s.isSymbolicLink()) {
      const target = await readlink(p).catch(() => null);
      if (target !== null) out.push({ symlink: p, target });
    } else if (s.isDirectory() || s.isFile()) {
      out.push({ bind: p });
    }
  }
  return out;
}

/** Is `p` equal to `dir` or inside it? (Both absolute and normalised.) */
export function isWithin(p: string, dir: string): boolean {
  if (dir === "/") return true;
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

export const depth = (p: string) => p.split("/").filter(Boolean).length;

/**
 * Toolchain directories on the commands' PATH that the system view does not
 * already show (e.g. /work/.tools/node/bin, ~/.nvm/.../bin): `.../bin` of a
 * toolchain is exposed with its prefix (its lib/ holds what the binaries
 * load), unless that prefix would show a directory that must stay hidden
 * (the workspace root, the state directory) or is shallow (`/opt/bin` →
 * `/opt`, `~/bin` → the home): then only the bin directory itself.
 */
export async function toolchainDirs(opts: {
  path: string;
  /** Already visible (system dirs' real paths). */
  visible: string[];
  /** Never exposed, nor anything that contains them. */
  secret: string[];
  /** Whether the sandbox user can read a directory (bwrap binds as that user); default: yes. */
  readable?: (dir: string) => Promise<boolean>;
}): Promise<string[]> {
  const out = new Set<string>();
  const shows = (dir: string) => opts.secret.some((s) => isWithin(s, dir) || isWithin(dir, s));
  for (const entry of opts.path.split(":")) {
    if (!path.isAbsolute(entry)) continue;
    const real = await realpath(entry).catch(() => null);
    if (!real || real === "/" || opts.visible.some((v) => isWithin(real, v))) continue;
    if (opts.readable && !(await opts.readable(real))) continue;
    const prefix = path.dirname(real);
    if (path.basename(real) === "bin" && depth(prefix) >= 3 && !shows(prefix)) out.add(prefix);
    else if (!shows(real)) out.add(real);
  }
  return [...out].sort((a, b) => depth(a) - depth(b));
}

/**
 * Can `uid`/`gid` pass through every directory to `dir` and list it? From
 * the mode bits (the worker is root and checks for another uid; ACLs aside).
 */
export async function readableBy(dir: string, uid: number, gid: number): Promise<boolean> {
  const may = (s: { mode: number; uid: number; gid: number }, bits: number) =>
    s.uid === uid
      ? (s.mode & (bits << 6)) === bits << 6
      : s.gid === gid
        ? (s.mode & (bits << 3)) === bits << 3
        : (s.mode & bits) === bits;
  const target = await stat(dir).catch(() => null);
  if (!target || !may(target, 0o5)) return false;
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const s = await stat(d).catch(() => null);
    if (!s || !may(s, 0o1)) return false;
    if (d === "/") return true;
  }
}
