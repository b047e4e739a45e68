import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { Logger as WorkerLogger, runMigrations as runWorkerMigrations } from "graphile-worker";
import { EBB_LOCK_SPACE, LOCKS } from "./advisory_locks.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
export const WORKER_SCHEMA = "ebb_worker";
const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

export class MigrationError extends Error {
  override name = "MigrationError";
}

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrationFiles(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".sql")).sort();
  const files: MigrationFile[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    const m = FILE_NAME.exec(name);
    if (!m) throw new MigrationError(`migration file name ${name} must look like 0001_some_name.sql`);
    if (seen.has(m[1]!)) throw new MigrationError(`two migrations share number ${m[1]} (${name})`);
    seen.add(m[1]!);
    const sql = await readFile(path.join(dir, name), "utf8");
    files.push({ name, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return files;
}

// The ledger lives in schema ebb; created under the lock so concurrent first runs do not race.
const LEDGER = `
create schema if not exists ebb;
create table if not exists ebb.schema_migrations (
  name       text primary key,
  checksum   text not null,
  applied_at timestamptz not null default now()
);`;

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Apply pending migrations in name order, each in its own transaction that first takes
 * pg_advisory_xact_lock(ebb, migrate): concurrent migrators (ten replicas at deploy) queue
 * on the lock, and each re-reads the ledger after getting it, so every file runs once.
 * An applied file whose checksum changed is refused. `recordOnly` records pending files as
 * applied without running them (for files applied by hand with psql).
 * Then installs graphile-worker's schema `ebb_worker` (its migrator tolerates concurrency).
 */
export async function migrate(
  pool: pg.Pool,
  opts: { dir?: string; recordOnly?: boolean; log?: (msg: string) => void } = {},
): Promise<MigrateResult> {
  const files = await readMigrationFiles(opts.dir);
  const result: MigrateResult = { applied: [], alreadyApplied: [] };
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    for (const file of files) {
      await client.query("begin");
      try {
        await client.query("select pg_advisory_xact_lock($1, $2)", [EBB_LOCK_SPACE, LOCKS.migrate]);
        await client.query(LEDGER);
        const { rows } = await client.query<{ name: string; checksum: string }>(
          "select name, checksum from ebb.schema_migrations",
        );
        checkLedger(rows, files);
        if (rows.some((r) => r.name === file.name)) {
          result.alreadyApplied.push(file.name);
        } else {
          if (!opts.recordOnly) await client.query(file.sql);
          await client.query("insert into ebb.schema_migrations (name, checksum) values ($1, $2)", [
            file.name,
            file.checksum,
          ]);
          result.applied.push(file.name);
          opts.log?.(`${opts.recordOnly ? "recorded" : "applied"} ${file.name}`);
        }
        await client.query("commit");
      } catch (err) {
        await client.query("rollback").catch((e: Error) => (broken = e));
        if (err instanceof MigrationError) throw err;
        throw new MigrationError(`migration ${file.name} failed: ${(err as Error).message}`);
      }
    }
  } finally {
    client.release(broken);
  }
  await runWorkerMigrations({ pgPool: pool, schema: WORKER_SCHEMA, logger: quietLogger });
  return result;
}

// Files of pre-release ebb, replaced by the baseline 0001_schema.sql + 0002_functions.sql. A
// database that recorded them has that schema already; the baseline must not run over it.
const PRE_RELEASE_MIGRATIONS = new Set([
  "0001_foundation.sql", "0002_catalog.sql", "0003_scheduling.sql", "0004_retention.sql",
  "0005_artifact_inspection.sql", "0006_trigger_execution.sql", "0007_execution_round_trips.sql",
  "0008_quiet_task_jobs.sql", "0009_task_job_lanes.sql", "0010_plan_batches_set_based.sql",
  "0011_repositories_by_project.sql", "0012_decisions_task_reference_unchecked.sql",
  "0013_plan_tasks_through_batches.sql", "0014_cron_field_ranges.sql",
  "0015_fresh_reads_and_stop_signal.sql", "0016_artifact_push_time.sql",
  "0017_sync_repositories_and_schedules.sql",
]);

function checkLedger(rows: { name: string; checksum: string }[], files: MigrationFile[]): void {
  const byName = new Map(files.map((f) => [f.name, f]));
  const preRelease = rows.map((r) => r.name).filter((n) => PRE_RELEASE_MIGRATIONS.has(n) && !byName.has(n)).sort();
  if (preRelease.length > 0) {
    throw new MigrationError(
      `this database was migrated by a pre-release ebb (${preRelease[0]}${preRelease.length > 1 ? ` ... ${preRelease.at(-1)}` : ""}), whose migrations were folded into ${files[0]?.name ?? "the baseline"}: recreate it (a new database, or drop schema ebb and ebb_worker cascade) and run ebb migrate`,
    );
  }
  for (const row of rows) {
    const file = byName.get(row.name);
    if (!file) {
      throw new MigrationError(
        `the database has migration ${row.name} applied, which this ebb does not have: upgrade ebb`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ${file.checksum.slice(0, 12)} on disk); applied migrations are never edited: restore the file and add a new migration`,
      );
    }
  }
}

/** Pending = on disk but not in the ledger; used by /readyz. Edited files count as not current. */
export async function migrationStatus(
  pool: pg.Pool,
  dir?: string,
): Promise<{ current: boolean; pending: string[]; problem?: string }> {
  const files = await readMigrationFiles(dir);
  let rows: { name: string; checksum: string }[];
  try {
    ({ rows } = await pool.query("select name, checksum from ebb.schema_migrations"));
  } catch (err) {
    if ((err as { code?: string }).code === "42P01") return { current: false, pending: files.map((f) => f.name) };
    throw err;
  }
  try {
    checkLedger(rows, files);
  } catch (err) {
    return { current: false, pending: [], problem: (err as Error).message };
  }
  const applied = new Set(rows.map((r) => r.name));
  const pending = files.filter((f) => !applied.has(f.name)).map((f) => f.name);
  return { current: pending.length === 0, pending };
}

const quietLogger = new WorkerLogger(() => () => {});
