import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freshDatabase, SERVER_URL } from "../support/db.js";
import { runEbb } from "../support/ebb_process.js";
import { startPgBouncer } from "../support/pgbouncer.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";
import { waitFor } from "../support/wait_for.js";

// one PgBouncer for the file, stopped when the file ends
const pgb = await startPgBouncer({ serverUrl: SERVER_URL, poolMode: "transaction", poolSize: 3 });
after(() => pgb.stop());

const workerEnv = (url: string, extra: NodeJS.ProcessEnv) => ({
  DATABASE_URL: url, EBB_ROLES: "worker", EBB_MIGRATE: "false", EBB_POOL_SIZE: "4", EBB_WORKER_CONCURRENCY: "2", EBB_LOG_LEVEL: "info", ...extra,
});

async function triggerAndCount(db: Awaited<ReturnType<typeof freshDatabase>>, n: number): Promise<() => Promise<Record<string, number>>> {
  await db.pool.query("insert into public.test_kind_targets (target_id, tasks) select i, 2 from generate_series(1, $1) i", [n]);
  await db.pool.query("select ebb.trigger_execution('test_sleep', i) from generate_series(1, $1) i", [n]);
  return async () => {
    const { rows } = await db.pool.query<{ status: string; n: number }>("select status, count(*)::int as n from ebb.executions group by status");
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  };
}

test("a bad pooling mode or poll interval is refused at start, naming the setting (exit 2)", async () => {
  const mode = await runEbb(["start"], { DATABASE_URL: SERVER_URL, EBB_DATABASE_POOLING: "session" });
  assert.equal(mode.code, 2, mode.stderr);
  assert.match(mode.stderr, /EBB_DATABASE_POOLING \(--database-pooling\): must be one of direct, transaction \(got "session"\)/);
  const poll = await runEbb(["start", "--worker-poll-interval-ms", "10"], { DATABASE_URL: SERVER_URL });
  assert.equal(poll.code, 2, poll.stderr);
  assert.match(poll.stderr, /EBB_WORKER_POLL_INTERVAL_MS \(--worker-poll-interval-ms\): must be >= 50/);
});

test("transaction pooling behind PgBouncer: the worker picks up new jobs by polling, no LISTEN reaches PostgreSQL", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const ebb = spawnTestEbb(workerEnv(pgb.url(db.name), { EBB_DATABASE_POOLING: "transaction", EBB_WORKER_POLL_INTERVAL_MS: "300" }));
  await ebb.waitForReady();
  await sleep(1000); // idle: every worker has polled once and found nothing
  const statuses = await triggerAndCount(db, 5);
  await waitFor("5 executions to succeed", async () => (await statuses()).success === 5, 30_000, 100);
  const { rows } = await db.pool.query("select count(*)::int as n from ebb.tasks where status = 'success'");
  assert.equal(rows[0].n, 10);
  ebb.child.kill("SIGTERM");
  assert.equal((await ebb.exited).code, 0, ebb.stderr().slice(-2000));
  assert.doesNotMatch(pgb.log(), /got packet 'A'/, "no server connection in PgBouncer's pool was LISTENing");
  assert.doesNotMatch(ebb.stderr(), /prepared statement "[^"]*" (does not exist|already exists)/);
});

test("with a 10-minute poll interval, transaction pooling leaves a new job waiting (nothing but polling wakes the worker); direct pooling's LISTEN picks it up at once", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const slow = { EBB_WORKER_POLL_INTERVAL_MS: "600000" };
  const pooled = spawnTestEbb(workerEnv(pgb.url(db.name), { EBB_DATABASE_POOLING: "transaction", ...slow }));
  await pooled.waitForReady();
  await sleep(1500); // the start-up poll has found nothing; the next one is 10 minutes away
  const statuses = await triggerAndCount(db, 1);
  await sleep(5000);
  assert.deepEqual(await statuses(), { pending: 1 }, "not picked up: no LISTEN, no poll yet");
  pooled.child.kill("SIGTERM");
  assert.equal((await pooled.exited).code, 0, pooled.stderr().slice(-2000));

  // the default (direct): LISTEN on a session of its own, on the direct URL
  const direct = spawnTestEbb(workerEnv(db.url, slow));
  await direct.waitForReady();
  await waitFor("the waiting execution to succeed after the start-up poll", async () => (await statuses()).success === 1, 30_000, 100);
  await sleep(1500);
  await db.pool.query("insert into public.test_kind_targets (target_id, tasks) values (2, 2)");
  await db.pool.query("select ebb.trigger_execution('test_sleep', 2)");
  await waitFor("a new execution to succeed through LISTEN/NOTIFY", async () => (await statuses()).success === 2, 20_000, 100);
  direct.child.kill("SIGTERM");
  assert.equal((await direct.exited).code, 0, direct.stderr().slice(-2000));
});
