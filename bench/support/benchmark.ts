// What a benchmark is to the runner: a name, what it measures, and run(ctx) returning tables.
import type { BenchDatabase } from "./bench_database.js";
import type { CatalogShape, SeedResult } from "./seed_catalog.js";

export type Scale = "small" | "full";

export interface ResultTable {
  title: string;
  head: string[];
  rows: (string | number)[][];
  /** lines printed under the table: what the numbers mean, targets met or missed */
  notes?: string[];
}

export interface SeededDatabase extends BenchDatabase {
  seed: SeedResult;
}

export interface BenchContext {
  scale: Scale;
  /** progress line on stderr (tables go to stdout) */
  log(message: string): void;
  /** a fresh, migrated, empty database; dropped after the benchmark */
  freshDatabase(label: string): Promise<BenchDatabase>;
  /** a fresh copy of a migrated database seeded with this catalog shape; dropped after the benchmark */
  seededDatabase(label: string, shape: CatalogShape): Promise<SeededDatabase>;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<ResultTable[]>;
}
