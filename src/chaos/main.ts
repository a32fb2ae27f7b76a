/**
 * `scripts/chaos [scenario...] [--quick] [--seed N] [--json FILE] [--keep]`:
 * runs the chaos scenarios (default: all, full size), one after the other,
 * each on its own nats-server and swarm, and prints the table of what was
 * injected and what became of every task. Exit 0 when every scenario kept
 * the promise (nothing lost), 1 otherwise, 2 on bad arguments.
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { errorMessage } from "../errors.ts";
import { freshSeed } from "./prng.ts";
import { machineFacts, machineLine, resultNotes, resultTable } from "./report-table.ts";
import { SCENARIOS, type ScenarioRow } from "./scenarios.ts";

const USAGE = `usage: scripts/chaos [scenario...] [--quick] [--seed N] [--json FILE] [--keep]

scenarios: ${SCENARIOS.map((s) => s.id).join(", ")} (default: all)
  --quick      the small sizes the vitest cases use
  --seed N     seed of every random choice (default: from the clock; printed)
  --json FILE  also write the rows, with the machine, as JSON
  --keep       keep every run's directory (logs, workspace), not only failed ones`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        quick: { type: "boolean", default: false },
        seed: { type: "string" },
        json: { type: "string" },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.id === p));
  if (unknown.length) {
    process.stderr.write(`unknown scenario: ${unknown.join(", ")}\n${USAGE}\n`);
    return 2;
  }
  const seed = values.seed === undefined ? freshSeed() : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    process.stderr.write(`--seed must be a non-negative integer\n`);
    return 2;
  }
  const chosen = positionals.length
    ? SCENARIOS.filter((s) => positionals.includes(s.id))
    : [...SCENARIOS];
  const size = values.quick ? "quick" : "full";
  const machine = await machineFacts();
  process.stderr.write(`chaos: ${chosen.length} scenario(s), ${size}, seed ${seed}\n`);
  process.stderr.write(`machine: ${machineLine(machine)}\n`);

  const rows: ScenarioRow[] = [];
  for (const s of chosen) {
    const t0 = Date.now();
    const log = (line: string) =>
      process.stderr.write(`[${s.id} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
    log("starting");
    try {
      const row = await s.run({ size, seed, log, keep: values.keep });
      rows.push(row);
      log(row.ok ? "ok" : `NOT OK: ${row.problems.join("; ")}`);
    } catch (err) {
      log(`failed to run: ${errorMessage(err)}`);
      process.stderr.write(`${(err as Error).stack ?? ""}\n`);
      return 1;
    }
  }

  const command = `scripts/chaos${positionals.length ? ` ${positionals.join(" ")}` : ""}${values.quick ? " --quick" : ""} --seed ${seed}`;
  process.stdout.write(
    [
      `## Chaos results (${size})`,
      "",
      `Command: \`${command}\``,
      "",
      `Machine: ${machineLine(machine)}`,
      "",
      resultTable(rows),
      "",
      resultNotes(rows),
      "",
    ].join("\n"),
  );
  if (values.json) {
    await writeFile(values.json, `${JSON.stringify({ command, machine, rows }, null, 2)}\n`);
  }
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main();
