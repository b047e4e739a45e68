import assert from "node:assert/strict";
import { cp, mkdtemp, appendFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { migrate, MigrationError, migrationStatus, MIGRATIONS_DIR, readMigrationFiles } from "../../src/db/migrate.js";
import { freshDatabase } from "../support/db.js";
import { runEbb } from "../support/ebb_process.js";

test("migrate applies every file once; a second run is a no-op", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  const files = await readMigrationFiles();
  const first = await migrate(db.pool);
  assert.deepEqual(first.applied, files.map((f) => f.name));
  const tablesBefore = await db.pool.query("select count(*)::int as n from information_schema.tables where table_schema in ('ebb','ebb_worker')");
  const second = await migrate(db.pool);
  assert.deepEqual(second.applied, []);
  assert.deepEqual(second.alreadyApplied, files.map((f) => f.name));
  const tablesAfter = await db.pool.query("select count(*)::int as n from information_schema.tables where table_schema in ('ebb','ebb_worker')");
  assert.equal(tablesAfter.rows[0].n, tablesBefore.rows[0].n);
  const ledger = await db.pool.query("select name, checksum from ebb.schema_migrations order by name");
  assert.deepEqual(ledger.rows, files.map((f) => ({ name: f.name, checksum: f.checksum })));
  // graphile-worker's schema is installed by the same command, in schema ebb_worker
  const worker = await db.pool.query("select count(*)::int as n from ebb_worker.migrations");
  assert.ok(worker.rows[0].n > 0);
  assert.equal((await migrationStatus(db.pool)).current, true);
});

test("five `ebb migrate` processes at once: all succeed, each migration applied once", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  const runs = await Promise.all(Array.from({ length: 5 }, () => runEbb(["migrate", "--database-url", db.url])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const applied = runs.map((r) => Number(/^(\d+) migration/.exec(r.stdout)?.[1]));
  const files = await readMigrationFiles();
  // exactly one process applied each file; together they applied all of them once
  assert.equal(applied.reduce((a, b) => a + b, 0), files.length);
  const ledger = await db.pool.query("select name, count(*)::int as n from ebb.schema_migrations group by name");
  assert.equal(ledger.rowCount, files.length);
  assert.ok(ledger.rows.every((r) => r.n === 1));
});

test("an applied migration that was edited is refused with a clear error, and nothing runs", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  const dir = await mkdtemp(path.join(tmpdir(), "ebb-mig-"));
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  await writeFile(path.join(dir, "9001_later.sql"), "create table ebb.later_one (id int);");
  await migrate(db.pool, { dir });
  const first = (await readMigrationFiles(dir))[0]!;
  await appendFile(path.join(dir, first.name), "\n-- sneaky edit\ncreate table ebb.sneaky (id int);\n");
  await writeFile(path.join(dir, "9002_next.sql"), "create table ebb.next_one (id int);");
  await assert.rejects(migrate(db.pool, { dir }), (err: unknown) => {
    assert.ok(err instanceof MigrationError);
    assert.match(err.message, new RegExp(`migration ${first.name} was edited after it was applied`));
    return true;
  });
  const { rows } = await db.pool.query("select to_regclass('ebb.sneaky') as a, to_regclass('ebb.next_one') as b");
  assert.deepEqual(rows[0], { a: null, b: null });
  const status = await migrationStatus(db.pool, dir);
  assert.equal(status.current, false);
  assert.match(status.problem ?? "", /was edited/);
});

test("a failing migration rolls back whole and is not recorded", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  const dir = await mkdtemp(path.join(tmpdir(), "ebb-mig-"));
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  await writeFile(path.join(dir, "9001_broken.sql"), "create table ebb.half (id int);\nselect no_such_function();");
  await assert.rejects(migrate(db.pool, { dir }), /migration 9001_broken.sql failed: .*no_such_function/);
  const { rows } = await db.pool.query("select to_regclass('ebb.half') as t, (select count(*)::int from ebb.schema_migrations where name = '9001_broken.sql') as n");
  assert.deepEqual(rows[0], { t: null, n: 0 });
});

test("the migration files apply with plain psql in order (the documented route)", async (t) => {
  const { execFileSync } = await import("node:child_process");
  try { execFileSync("psql", ["--version"]); } catch { t.skip("psql not installed"); return; }
  const db = await freshDatabase(undefined, { migrate: false });
  for (const f of await readMigrationFiles()) {
    execFileSync("psql", ["-v", "ON_ERROR_STOP=1", "-q", "-1", "-d", db.url, "-f", path.join(MIGRATIONS_DIR, f.name)]);
  }
  const r = await runEbb(["migrate", "--record-only", "--database-url", db.url]);
  assert.equal(r.code, 0, r.stderr);
  const again = await migrate(db.pool);
  assert.deepEqual(again.applied, []);
});

test("a database migrated by a pre-release ebb is refused by ebb migrate and ebb start, nothing of the baseline applied", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  // the ledger and a table as a pre-release ebb left them (its files 0001_foundation ... 0017_...)
  const old = ["0001_foundation.sql", "0002_catalog.sql", "0016_artifact_push_time.sql", "0017_sync_repositories_and_schedules.sql"];
  await db.pool.query(`
    create schema ebb;
    create table ebb.schema_migrations (name text primary key, checksum text not null, applied_at timestamptz not null default now());
    create table ebb.registries (id bigint generated always as identity primary key, name text not null unique)`);
  for (const name of old) await db.pool.query("insert into ebb.schema_migrations (name, checksum) values ($1, 'x')", [name]);
  const message = /this database was migrated by a pre-release ebb \(0001_foundation\.sql \.\.\. 0017_sync_repositories_and_schedules\.sql\).*recreate it/;

  await assert.rejects(migrate(db.pool), (err: unknown) => {
    assert.ok(err instanceof MigrationError);
    assert.match(err.message, message);
    return true;
  });
  const viaMigrate = await runEbb(["migrate", "--database-url", db.url]);
  assert.equal(viaMigrate.code, 1, viaMigrate.stderr);
  assert.match(viaMigrate.stderr, message);
  const viaStart = await runEbb(["start", "--database-url", db.url, "--http-port", "0"]);
  assert.notEqual(viaStart.code, 0, viaStart.stderr);
  assert.match(viaStart.stderr + viaStart.stdout, message);
  assert.match((await migrationStatus(db.pool)).problem ?? "", message);

  const { rows } = await db.pool.query<{ names: string[]; policies: string | null; worker: string | null }>(`
    select array_agg(name order by name) as names, to_regclass('ebb.policies')::text as policies,
           to_regnamespace('ebb_worker')::text as worker from ebb.schema_migrations`);
  assert.deepEqual(rows[0], { names: old, policies: null, worker: null }, "ledger untouched, no baseline object created");
});
