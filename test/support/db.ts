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

/**
 * Name of the migrated template database test/run.ts builds once per run (buildTemplate).
 * When set, freshDatabase clones it instead of running every migration again.
 */
export const TEMPLATE_ENV = "EBB_TEST_TEMPLATE_DATABASE";

export function databaseUrl(name: string, base = SERVER_URL): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Rows of one query: `await q("select ...", [params])`. */
export type Query = <T = any>(sql: string, params?: unknown[]) => Promise<T[]>;

/** The query helper of test files: runs on `db` (a pool or a client) and returns the rows. */
export function queryRows(db: pg.Pool | pg.Client | pg.PoolClient): Query {
  return async <T = any>(sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows as T[];
}

export interface FreshDatabase {
  name: string;
  url: string;
  /** A pool (max 10) on the fresh database, closed with the database. */
  pool: pg.Pool;
  /** queryRows(pool): the rows of one query on the pool. */
  q: Query;
  close(): Promise<void>;
}

function newDatabaseName(prefix = "ebb_test"): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
}

/**
 * A brand-new database (migrated unless told not to), dropped when the test file ends, so
 * test files never see each other's rows and can run in parallel. Under test/run.ts a migrated
 * database is a copy of the run's template (CREATE DATABASE ... TEMPLATE), which costs a
 * fraction of running the migrations; run alone (node --test file) it is migrated in place.
 */
export async function freshDatabase(
  _t?: TestContext,
  opts: { migrate?: boolean; poolSize?: number } = {},
): Promise<FreshDatabase> {
  const name = newDatabaseName();
  const template = opts.migrate !== false ? process.env[TEMPLATE_ENV] : undefined;
  await adminQuery(template ? `create database ${name} template ${template}` : `create database ${name}`);
  const url = databaseUrl(name);
  const pool = createPool({ connectionString: url, max: opts.poolSize ?? 10, role: "test" });
  if (opts.migrate !== false && !template) await migrate(pool);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await pool.end();
    await adminQuery(`drop database if exists ${name} with (force)`);
  };
  after(close);
  return { name, url, pool, q: queryRows(pool), close };
}

/**
 * Create and migrate (ebb's migrator, graphile-worker's schema included) a template database
 * for freshDatabase to clone, and return its name. Nothing stays connected to it: CREATE
 * DATABASE ... TEMPLATE refuses a source with other sessions, so connections are refused
 * from here on (allow_connections false) and only cloning and dropTemplate touch it.
 */
export async function buildTemplate(server = SERVER_URL): Promise<string> {
  const name = newDatabaseName("ebb_test_template");
  await adminQuery(`create database ${name}`, [], server);
  const pool = createPool({ connectionString: databaseUrl(name, server), max: 2, role: "test-template" });
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    await adminQuery(`drop database if exists ${name} with (force)`, [], server);
    throw err;
  }
  await pool.end();
  await adminQuery(`alter database ${name} with is_template true allow_connections false`, [], server);
  return name;
}

export async function dropTemplate(name: string, server = SERVER_URL): Promise<void> {
  await adminQuery(`alter database ${name} with is_template false`, [], server);
  await adminQuery(`drop database if exists ${name} with (force)`, [], server);
}

export async function adminQuery(sql: string, params: unknown[] = [], server = SERVER_URL): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: server, application_name: "ebb:test-admin" });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}
