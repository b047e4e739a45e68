import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import { after } from "node:test";
import pg from "pg";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";

/**
 * The server tests run against: DATABASE_URL when set (test/run.ts sets it to the embedded
 * server when the user gave none), else the machine's PostgreSQL.
 */
export const SERVER_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";

export function databaseUrl(name: string, base = SERVER_URL): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

export interface FreshDatabase {
  name: string;
  url: string;
  /** A pool (max 10) on the fresh database, closed with the database. */
  pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * A brand-new database (migrated unless told not to), dropped when the test file ends, so
 * test files never see each other's rows and can run in parallel.
 */
export async function freshDatabase(
  _t?: TestContext,
  opts: { migrate?: boolean; poolSize?: number } = {},
): Promise<FreshDatabase> {
  const name = `ebb_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = databaseUrl(name);
  const pool = createPool({ connectionString: url, max: opts.poolSize ?? 10, role: "test" });
  if (opts.migrate !== false) await migrate(pool);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await pool.end();
    await adminQuery(`drop database if exists ${name} with (force)`);
  };
  after(close);
  return { name, url, pool, close };
}

export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: SERVER_URL, application_name: "ebb:test-admin" });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}
