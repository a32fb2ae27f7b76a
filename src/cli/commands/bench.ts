import type { Command } from "commander";
import { BadInputError } from "../../errors.ts";
import { BENCH_IDS, type BenchId } from "../../bench/results.ts";

interface BenchFlags {
  quick?: boolean;
  only?: string;
  out?: string;
  write: boolean;
  /** undefined: on for the full run, off for --quick. */
  profile?: boolean;
  json?: boolean;
}

function parseOnly(value: string | undefined): BenchId[] {
  if (!value) return [];
  const ids = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = ids.filter((id) => !(BENCH_IDS as readonly string[]).includes(id));
  if (unknown.length) {
    throw new BadInputError(
      `--only: unknown benchmark ${unknown.join(", ")} (choose from ${BENCH_IDS.join(", ")})`,
    );
  }
  return ids as BenchId[];
}

/** `swarm bench`: every benchmark on this machine; prints a table and writes docs/benchmarks.md. */
export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description(
      "measure the swarm on this machine (each benchmark starts its own nats-server); " +
        "prints a table and writes docs/benchmarks.md and docs/benchmarks.svg",
    )
    .option("--quick", "small samples, under a minute (writes to a temp dir unless --out)")
    .option(
      "--only <ids>",
      `comma-separated subset of: ${BENCH_IDS.join(", ")} (writes to a temp dir unless --out)`,
    )
    .option("--out <file.md>", "where to write the Markdown (the SVG goes beside it)")
    .option("--no-write", "print the table only")
    .option("--json", "print the results as one JSON object instead of the table")
    .option("--profile", "also profile with node --cpu-prof (default for a complete full run)")
    .option("--no-profile", "skip the profiled runs")
    .addHelpText(
      "after",
      "\nExamples:\n  $ scripts/bench                 full run (< 10 min), writes docs/benchmarks.md\n" +
        "  $ scripts/bench --quick         under a minute\n" +
        "  $ swarm bench --only raw,dispatch --no-write",
    )
    .action(async (flags: BenchFlags) => {
      const only = parseOnly(flags.only);
      // Loaded here, not at the top: every swarm process imports this file, and the
      // benchmarks pull in LangGraph and the whole swarm, which a worker must not carry.
      const [{ defaultOutput, runBench }, { REPO_ROOT }] = await Promise.all([
        import("../../bench/runner.ts"),
        import("../../bench/processes.ts"),
      ]);
      const quick = flags.quick === true;
      const out = flags.write
        ? (flags.out ?? defaultOutput(quick, only.length > 0, REPO_ROOT))
        : null;
      const argv = process.argv.slice(process.argv.indexOf("bench") + 1);
      const result = await runBench({
        quick,
        only,
        // The profiled runs take about a minute: by default only in a complete full run.
        profile: flags.profile ?? (!quick && only.length === 0),
        out,
        command: ["scripts/bench", ...argv].join(" "),
        say: (line) => process.stderr.write(`${line}\n`),
      });
      if (flags.json) {
        const { sections, markdownPath, svgPath, complete } = result;
        process.stdout.write(
          `${JSON.stringify({ complete, markdown: markdownPath, svg: svgPath, sections })}\n`,
        );
      } else {
        process.stdout.write(`${result.table}\n`);
        if (result.markdownPath) process.stdout.write(`\nwrote ${result.markdownPath}\n`);
        if (result.svgPath) process.stdout.write(`wrote ${result.svgPath}\n`);
      }
      if (!result.complete) {
        process.stderr.write("swarm bench: some benchmarks did not finish (see the table)\n");
        process.exitCode = 1;
      }
    });
}
