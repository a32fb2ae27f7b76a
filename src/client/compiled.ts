/**
 * The compiled CLI: `src/` transpiled to JavaScript in `dist/` (same layout,
 * so paths relative to `import.meta.url` still work), built by the scripts'
 * set-up (scripts/lib/setup.sh). Spawned replicas run it instead of the
 * sources because Node's type stripper (a wasm module, plus stripping each
 * file) costs a process about 25 MB of resident memory (docs/benchmarks.md,
 * section 6). The build is stamped with a hash of the sources it came from,
 * and it is used only while that hash matches the sources: it is never stale.
 * Tests and a plain `node src/cli/main.ts` keep running the sources.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SRC_DIR = path.join(ROOT, "src");
export const DIST_DIR = path.join(ROOT, "dist");
const STAMP = ".source-hash";

/** Bump when the build itself changes (options, layout): older builds then count as stale. */
const BUILD_FORMAT = "2";

/** Where the sources are and where their build goes (tests use temporary ones). */
export interface BuildDirs {
  src: string;
  dist: string;
}
const REPO_DIRS: BuildDirs = { src: SRC_DIR, dist: DIST_DIR };

/** A file served as it is (the dashboard's page): anything under an `assets/` folder. */
function isAsset(file: string): boolean {
  return file.split(path.sep).includes("assets");
}

/** Every .ts file and every asset under `src`, relative, sorted. */
async function sourceFiles(src: string): Promise<string[]> {
  const all = await readdir(src, { recursive: true, withFileTypes: true });
  return all
    .filter((e) => e.isFile())
    .map((e) => path.relative(src, path.join(e.parentPath, e.name)))
    .filter((f) => isAsset(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts")))
    .sort();
}

interface Source {
  file: string;
  code: Buffer;
}

/** Every source file, read once, in `sourceFiles` order. */
async function readSources(src: string): Promise<Source[]> {
  const files = await sourceFiles(src);
  const codes = await Promise.all(files.map((f) => readFile(path.join(src, f))));
  return files.map((file, i) => ({ file, code: codes[i]! }));
}

/** sha256 of every source file's path and content (and the build format). */
function fingerprintOf(sources: readonly Source[]): string {
  const hash = createHash("sha256").update(`squad-dist ${BUILD_FORMAT}\0`);
  for (const { file, code } of sources) hash.update(`${file}\0`).update(code).update("\0");
  return hash.digest("hex");
}

export async function sourceFingerprint(src = SRC_DIR): Promise<string> {
  return fingerprintOf(await readSources(src));
}

async function readStamp(dir: string): Promise<string | null> {
  return readFile(path.join(dir, STAMP), "utf8").catch(() => null);
}

/** `dist/cli/main.js` if the build matches the sources as they are now, else null. */
export async function compiledEntry(dirs = REPO_DIRS): Promise<string | null> {
  const [stamp, current] = await Promise.all([readStamp(dirs.dist), sourceFingerprint(dirs.src)]);
  return stamp === current ? path.join(dirs.dist, "cli", "main.js") : null;
}

/**
 * Transpiles `src/` into `dist/` unless the build there already matches.
 * Type stripping only (no type check: `tsc --noEmit` does that), with
 * relative `.ts` imports rewritten to `.js`. Updated in place, file by file
 * (each written whole, then renamed): a running replica that imports a module
 * lazily finds it, as it would in `src/`. The stamp goes first and comes back
 * last, so no process starts from a build in the middle of an update.
 */
export async function buildCompiled(dirs = REPO_DIRS): Promise<"fresh" | "built"> {
  const { src, dist } = dirs;
  // Compiled from the very contents the stamp is made of: an edit during the build makes it stale.
  const sources = await readSources(src);
  const fingerprint = fingerprintOf(sources);
  if ((await readStamp(dist)) === fingerprint) return "fresh";
  const { default: ts } = await import("typescript");
  const compilerOptions = {
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    verbatimModuleSyntax: true,
    rewriteRelativeImportExtensions: true,
  };
  await mkdir(dist, { recursive: true });
  await rm(path.join(dist, STAMP), { force: true });
  const wanted = new Set<string>();
  for (const { file, code } of sources) {
    if (isAsset(file)) {
      wanted.add(file);
      const target = path.join(dist, file);
      if ((await readFile(target).catch(() => null))?.equals(code)) continue;
      await mkdir(path.dirname(target), { recursive: true });
      await writeWhole(target, code);
      continue;
    }
    const out = ts.transpileModule(code.toString("utf8"), {
      compilerOptions,
      fileName: file,
      reportDiagnostics: true,
    });
    const problems = out.diagnostics ?? [];
    if (problems.length) {
      const text = problems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      throw new Error(`cannot compile src/${file}: ${text.join("; ")}`);
    }
    const js = file.replace(/\.ts$/, ".js");
    wanted.add(js);
    const target = path.join(dist, js);
    if ((await readFile(target, "utf8").catch(() => null)) === out.outputText) continue;
    await mkdir(path.dirname(target), { recursive: true });
    await writeWhole(target, out.outputText);
  }
  // Modules whose source is gone go too, as they would from src/.
  const present = await readdir(dist, { recursive: true, withFileTypes: true });
  for (const e of present) {
    const rel = path.relative(dist, path.join(e.parentPath, e.name));
    const built = rel.endsWith(".js") || isAsset(rel);
    if (e.isFile() && built && !wanted.has(rel)) await rm(path.join(dist, rel));
  }
  await writeWhole(path.join(dist, STAMP), fingerprint);
  return "built";
}

/** Write to a temporary name, then rename: readers see the old file or the new, never half. */
async function writeWhole(file: string, text: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

if (import.meta.main) {
  const started = performance.now();
  const result = await buildCompiled();
  if (result === "built") {
    const ms = Math.round(performance.now() - started);
    process.stderr.write(`[setup] compiled src/ to dist/ in ${ms} ms\n`);
  }
}
