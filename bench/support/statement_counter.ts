// Counts the SQL statements a process sends (every pg client of the process: ebb's pool,
// graphile-worker's queries on it, LISTEN), per statement text, with their total time. The
// storm's ebb processes install it (BENCH_STATEMENTS_FILE) and rewrite the file every 200 ms;
// the bench reads it before the slot and after the drain: statements per job is a count, the
// same on a busy machine as on a quiet one, where jobs/s is not.
import { writeFileSync } from "node:fs";
import pg from "pg";

export interface StatementCounts {
  total: number;
  /** by normalised statement text (first 120 characters), most time first */
  statements: { sql: string; count: number; ms: number }[];
}

let installed: (() => StatementCounts) | undefined;

/**
 * Patch pg.Client so every statement of this process is counted (once per process); with a
 * file, the counts are also written there every 200 ms and at exit. Returns a snapshot reader.
 */
export function installStatementCounter(file?: string): () => StatementCounts {
  if (installed) return installed;
  const stats = new Map<string, { count: number; ms: number }>();
  let total = 0;
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const config = args[0] as string | { text?: string; name?: string } | undefined;
    const text = typeof config === "string" ? config : config?.text ?? config?.name ?? "?";
    const key = text.replace(/\s+/g, " ").trim().slice(0, 120);
    const started = performance.now();
    const record = () => {
      const s = stats.get(key) ?? { count: 0, ms: 0 };
      s.count++;
      s.ms += performance.now() - started;
      stats.set(key, s);
      total++;
    };
    const last = args[args.length - 1];
    if (typeof last === "function") {
      // pool.query() passes a callback
      args[args.length - 1] = (...r: unknown[]) => {
        record();
        return (last as (...a: unknown[]) => unknown)(...r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args) as Promise<unknown> | undefined;
    result?.then?.(record, record);
    return result;
  };
  const snapshot = (): StatementCounts => ({
    total,
    statements: [...stats].map(([sql, s]) => ({ sql, count: s.count, ms: Math.round(s.ms) })).sort((a, b) => b.ms - a.ms),
  });
  if (file) {
    const write = () => writeFileSync(file, JSON.stringify(snapshot()));
    setInterval(write, 200).unref();
    process.on("exit", write);
  }
  installed = snapshot;
  return snapshot;
}

/** Statements counted between two snapshots, leaving out those whose text matches `exclude`. */
export function statementsBetween(before: StatementCounts, after: StatementCounts, exclude?: RegExp): number {
  const base = new Map(before.statements.map((x) => [x.sql, x.count]));
  return after.statements.filter((x) => !exclude?.test(x.sql)).reduce((n, x) => n + x.count - (base.get(x.sql) ?? 0), 0);
}
