// Fresh databases for benchmarks: one per benchmark, created on the server given by
// DATABASE_URL (default the machine's PostgreSQL), migrated by ebb's own migrator, dropped
// at the end. A seeded catalog can be kept as a TEMPLATE database so the next benchmark that
// needs the same catalog gets a copy in seconds instead of seeding 1,000,000 rows again.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrate } from "../../src/db/migrate.js";

export const SERVER_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";

/** Connections the bench opens itself are tagged bench:*, never ebb:*, so samplers can tell them apart. */
export const BENCH_APP = "bench:harness";

export function databaseUrl(name: string, base = SERVER_URL): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: SERVER_URL, application_name: "bench:admin" });
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  /** A small pool tagged bench:harness (seeding, reading results); not counted as ebb's. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

function uniqueName(label: string): string {
  return `ebb_bench_${label}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
}

function harnessPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: BENCH_APP });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

async function open(name: string): Promise<BenchDatabase> {
  const url = databaseUrl(name);
  const pool = harnessPool(url);
  let dropped = false;
  return {
    name,
    url,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/** A brand-new database with ebb's migrations (and graphile-worker's schema) applied. */
export async function freshBenchDatabase(label: string): Promise<BenchDatabase> {
  const name = uniqueName(label);
  await adminQuery(`create database ${name}`);
  const db = await open(name);
  try {
    await migrate(db.pool);
  } catch (err) {
    await db.drop();
    throw err;
  }
  return db;
}

/** A copy of a template database (file-level copy by PostgreSQL; the template must have no sessions). */
export async function copyOfTemplate(template: string, label: string): Promise<BenchDatabase> {
  const name = uniqueName(label);
  await adminQuery(`create database ${name} template ${template} strategy file_copy`);
  return open(name);
}

/** Drops leftovers of an interrupted earlier run (databases named ebb_bench_*). */
export async function dropLeftoverBenchDatabases(): Promise<string[]> {
  const { rows } = await adminQuery<{ datname: string }>(
    "select datname from pg_database where datname like 'ebb\\_bench\\_%'",
  );
  for (const r of rows) await adminQuery(`drop database if exists ${r.datname} with (force)`);
  return rows.map((r) => r.datname);
}
