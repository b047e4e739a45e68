import assert from "node:assert/strict";
import { chmod, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";
import { runEbb, spawnEbb } from "../support/ebb_process.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait_for.js";
import { runCli } from "../cli/support/run_cli.js";

async function countEbbConnections(pool: import("pg").Pool, dbName: string): Promise<number> {
  const { rows } = await pool.query(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and application_name like 'ebb:%' and application_name <> 'ebb:test'",
    [dbName],
  );
  return rows[0].n;
}

test("ebb start: migrates, reports ready, and stops within 5 s of SIGTERM leaving no connection open", async () => {
  const db = await freshDatabase(undefined, { migrate: false });
  const ebb = spawnEbb(["start", "--database-url", db.url, "--http-port", "0", "--pool-size", "4", "--worker-concurrency", "2"]);
  const ready = await ebb.waitForReady();
  assert.deepEqual(ready.roles, ["scheduler", "worker", "http"]);
  const url = String(ready.http);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: "ok" });
  const readyz = await fetch(`${url}/readyz`);
  assert.equal(readyz.status, 200);
  const conns = await countEbbConnections(db.pool, db.name);
  assert.ok(conns >= 1 && conns <= 4, `ebb holds ${conns} connections, pool size 4`);
  const { rows } = await db.pool.query("select distinct application_name from pg_stat_activity where datname = $1 and application_name like 'ebb:%' and application_name <> 'ebb:test'", [db.name]);
  assert.deepEqual(rows.map((r) => r.application_name), ["ebb:scheduler+worker+http"]);

  const t0 = Date.now();
  ebb.child.kill("SIGTERM");
  const exit = await ebb.exited;
  const took = Date.now() - t0;
  assert.equal(exit.code, 0, ebb.stderr());
  assert.ok(took < 5000, `shutdown took ${took} ms`);
  // connections close with the process; the server notices their ends a moment later
  await waitFor("ebb's connections to close", async () => (await countEbbConnections(db.pool, db.name)) === 0, 10_000, 50);
});

test("a wrong configuration value is refused at start with a message naming it (exit 2)", async () => {
  // the real binary once; the other cases through main() in this process (same parsing and
  // exit codes, refused before anything starts), sparing a process start each
  const bad = await runEbb(["start", "--pool-size", "lots", "--database-url", "postgres://x@127.0.0.1:1/x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /EBB_POOL_SIZE \(--pool-size\): must be a number/);
  const env = await runCli(["start"], { EBB_ROLES: "scheduler,gardener", DATABASE_URL: "postgres://x@127.0.0.1:1/x" });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /EBB_ROLES \(--roles\): .*scheduler, worker, http/);
  const url = await runCli(["start"], { DATABASE_URL: "mysql://root@localhost/x" });
  assert.equal(url.code, 2);
  assert.match(url.stderr, /DATABASE_URL \(--database-url\): must be a postgres:\/\/ URL/);
  assert.doesNotMatch(url.stderr, /root@localhost/, "the URL (credentials) is not echoed");
  const tooMany = await runCli(["start", "--pool-size", "3", "--worker-concurrency", "3"], { DATABASE_URL: "postgres://x@127.0.0.1:1/x" });
  assert.equal(tooMany.code, 2);
  assert.match(tooMany.stderr, /EBB_WORKER_CONCURRENCY \(--worker-concurrency\): must be at most poolSize - 1/);
  const usage = await runCli(["start", "--no-such-flag"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown option '--no-such-flag'/);
});

test("without DATABASE_URL, ebb start runs an embedded PostgreSQL in its data dir and stops it", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "ebb-embedded-"));
  await chmod(dataDir, 0o755);
  const port = await freePort();
  const env = { DATABASE_URL: "", EBB_DATA_DIR: dataDir, EBB_EMBEDDED_PORT: String(port) };
  const ebb = spawnEbb(["start", "--http-port", "0"], env);
  const ready = await ebb.waitForReady();
  assert.equal(ready.embedded, true);
  assert.equal((await fetch(`${ready.http}/readyz`)).status, 200);
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr());
  // the embedded server stopped with it: its port is free again
  const { createConnection } = await import("node:net");
  const refused = await new Promise<boolean>((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => { s.destroy(); resolve(false); });
    s.on("error", () => resolve(true));
  });
  assert.ok(refused, "embedded PostgreSQL still listening after ebb stopped");
  // a second start reuses the initialised data dir
  const again = spawnEbb(["start", "--http-port", "0"], env);
  await again.waitForReady();
  again.child.kill("SIGINT");
  assert.equal((await again.exited).code, 0, again.stderr());
});
