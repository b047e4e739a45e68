// npm run bench [-- name ...] [--scale small|full] [--markdown file] [--keep]
//
// Runs the named benchmarks (default: all, in the order below), each on its own fresh
// database on DATABASE_URL or the machine's PostgreSQL, and prints one table per result.
// Every ratio compares against a peer measured in the same run. `--scale small` is a quick
// smoke run (under a minute) that checks the benchmarks still work; the full scale is the one
// recorded in BENCHMARKS.md. `--markdown file` also writes the tables as Markdown with the
// machine, date and command.
import { writeFile } from "node:fs/promises";
import os from "node:os";
import { Command, Option } from "commander";
import { churnBenchmark } from "./churn/churn.bench.js";
import { evaluateBenchmark } from "./evaluate/evaluate.bench.js";
import { faultsBenchmark } from "./faults/faults.bench.js";
import { graphileNoopBenchmark } from "./graphile_noop/graphile_noop.bench.js";
import { midnightStormBenchmark } from "./midnight_storm/midnight_storm.bench.js";
import { scaleoutBenchmark } from "./scaleout/scaleout.bench.js";
import { adminQuery, SERVER_URL, freshBenchDatabase, dropLeftoverBenchDatabases } from "./support/bench_database.js";
import type { Benchmark, BenchContext, ResultTable, Scale } from "./support/benchmark.js";
import { CatalogTemplates } from "./support/catalog_templates.js";
import { stopAllEbbChildren } from "./support/ebb_processes.js";
import { machineDescription, renderMarkdown, renderTerminal } from "./support/report.js";

// An interrupted run stops the ebb processes it started (they would keep running, orphaned).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopAllEbbChildren();
    process.exit(130);
  });
}

const BENCHMARKS: Benchmark[] = [evaluateBenchmark, graphileNoopBenchmark, midnightStormBenchmark, faultsBenchmark, scaleoutBenchmark, churnBenchmark];

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

async function main(argv: string[]): Promise<number> {
  const program = new Command("bench")
    .description("ebb benchmarks (tables with ratios against peers measured in the same run)")
    .argument("[names...]", `benchmarks to run: ${BENCHMARKS.map((b) => b.name).join(", ")} (default all)`)
    .addOption(new Option("--scale <scale>", "small = quick smoke run, full = recorded size").choices(["small", "full"]).default("full"))
    .option("--markdown <file>", "also write the tables as Markdown to this file")
    .option("--clean", "first drop ebb_bench_* databases left by an interrupted run")
    .option("--list", "list the benchmarks and exit")
    .exitOverride();
  program.parse(argv, { from: "user" });
  const opts = program.opts<{ scale: Scale; markdown?: string; clean?: boolean; list?: boolean }>();
  if (opts.list) {
    for (const b of BENCHMARKS) process.stdout.write(`${b.name.padEnd(16)} ${b.description}\n`);
    return 0;
  }
  const names: string[] = program.args;
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark ${unknown.join(", ")}; known: ${BENCHMARKS.map((b) => b.name).join(", ")}\n`);
    return 2;
  }
  const selected = names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS;

  const started = new Date();
  const log = (m: string) => process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
  if (opts.clean) {
    const dropped = await dropLeftoverBenchDatabases();
    if (dropped.length) log(`dropped leftovers: ${dropped.join(", ")}`);
  }
  const version = (await adminQuery<{ v: string }>("select split_part(version(), ' on ', 1) as v")).rows[0]!.v;
  const machine = await machineDescription(version);
  const command = `npm run bench -- ${[...names, "--scale", opts.scale].join(" ")}`;
  log(`server ${redact(SERVER_URL)}; ${machine}`);

  const templates = new CatalogTemplates(log);
  const markdown: string[] = [
    `### Run of ${started.toISOString()}`,
    "",
    `- command: \`${command}\``,
    `- machine: ${machine}`,
    `- server: ${redact(SERVER_URL)}`,
    "",
  ];
  let failed = 0;
  try {
    for (const bench of selected) {
      const owned: { drop(): Promise<void> }[] = [];
      const ctx: BenchContext = {
        scale: opts.scale,
        log: (m) => log(`${bench.name}: ${m}`),
        async freshDatabase(label) {
          const db = await freshBenchDatabase(label);
          owned.push(db);
          return db;
        },
        async seededDatabase(label, shape) {
          const db = await templates.copy(label, shape);
          owned.push(db);
          return db;
        },
      };
      const t0 = performance.now();
      log(`${bench.name}: start (${bench.description})`);
      // other work on the machine skews every number: record the load average alongside
      const loads: number[] = [os.loadavg()[0]!];
      const loadTimer = setInterval(() => loads.push(os.loadavg()[0]!), 5000);
      let tables: ResultTable[] = [];
      try {
        tables = await bench.run(ctx);
      } catch (err) {
        failed++;
        // a benchmark that fails its checks may still hand over its tables (err.tables)
        tables = (err as { tables?: ResultTable[] }).tables ?? [];
        log(`${bench.name}: FAILED: ${(err as Error).stack ?? String(err)}`);
      } finally {
        for (const db of owned.reverse()) await db.drop().catch((e: Error) => log(`drop failed: ${e.message}`));
      }
      clearInterval(loadTimer);
      log(`${bench.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const loadNote = `machine load (1-min load average, ${os.cpus().length} cores) during this benchmark: max ${Math.max(...loads).toFixed(1)}, mean ${(loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(1)}.`;
      for (const t of tables) (t.notes ??= []).push(loadNote);
      for (const t of tables) {
        process.stdout.write(renderTerminal(t));
        markdown.push(renderMarkdown(t));
      }
    }
  } finally {
    await templates.dropAll();
  }
  const total = (Date.now() - started.getTime()) / 1000;
  markdown.push(`Total wall time of the run: ${total.toFixed(0)} s.\n`);
  log(`all done in ${total.toFixed(0)} s${failed ? `, ${failed} FAILED` : ""}`);
  if (opts.markdown) await writeFile(opts.markdown, markdown.join("\n"));
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith("commander.")) process.exit(e.exitCode ?? 2);
    process.stderr.write(`${e.message ?? String(err)}\n`);
    process.exit(1);
  },
);
