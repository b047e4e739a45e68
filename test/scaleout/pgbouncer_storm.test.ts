import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { freshDatabase, SERVER_URL } from "../support/db.js";
import { startPgBouncer } from "../support/pgbouncer.js";
import { assertStormOutcome } from "../support/storm_checks.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";
import { waitFor } from "../support/wait_for.js";

const SCHEDULES = 500;
const TASKS_PER_EXECUTION = 2;
const PROCESSES = 3;
const EBB_POOL_SIZE = 8;
const PGBOUNCER_POOL_SIZE = 6;
// PostgreSQL or PgBouncer refusing a connection, or a named prepared statement that a pooled
// server connection does not know (or already has)
const REFUSED = /too many clients|remaining connection slots|no more connections allowed|prepared statement "[^"]*" (does not exist|already exists)/i;
const refusals = (text: string) => text.split("\n").filter((l) => REFUSED.test(l)).map((l) => l.slice(0, 300));

test(`${PROCESSES} ebb processes behind PgBouncer (transaction mode, pool ${PGBOUNCER_POOL_SIZE}), ${SCHEDULES} schedules on one cron second: every slot fires once, every execution succeeds, PostgreSQL sees at most the PgBouncer pool`, async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const bouncer = await startPgBouncer({ serverUrl: SERVER_URL, poolMode: "transaction", poolSize: PGBOUNCER_POOL_SIZE });
  after(() => bouncer.stop());
  const { q } = db;
  await q(`insert into public.test_kind_targets (target_id, tasks, sleep_ms)
           select i, $1, 50 from generate_series(1, $2) i`, [TASKS_PER_EXECUTION, SCHEDULES]);

  // 3 processes x 8 pool connections = 24 client connections to PgBouncer, 6 server connections
  const env = {
    DATABASE_URL: bouncer.url(db.name), EBB_DATABASE_POOLING: "transaction", EBB_WORKER_POLL_INTERVAL_MS: "250",
    EBB_POOL_SIZE: String(EBB_POOL_SIZE), EBB_WORKER_CONCURRENCY: "6", EBB_ROLES: "scheduler,worker", EBB_MIGRATE: "false",
    EBB_SCHEDULER_INTERVAL_MS: "500", EBB_HEARTBEAT_INTERVAL_MS: "1000", EBB_DEAD_WORKER_TIMEOUT_MS: "10000", EBB_LOG_LEVEL: "info",
  };
  const procs = Array.from({ length: PROCESSES }, () => spawnTestEbb(env));
  await Promise.all(procs.map((p) => p.waitForReady()));

  // Sampled on a direct connection to another database: every backend of the test database
  // except the test's own direct pool (application_name ebb:test) came through PgBouncer.
  const sampler = new pg.Client({ connectionString: SERVER_URL, application_name: "ebb:test-sampler" });
  await sampler.connect();
  let peak = 0;
  let samples = 0;
  const listening: string[] = [];
  let sampling = true;
  const sampling$ = (async () => {
    while (sampling) {
      const { rows } = await sampler.query<{ n: number; listen: string[] }>(
        `select count(*)::int as n,
                coalesce(array_agg(query) filter (where query ~* '^\\s*listen'), '{}') as listen
           from pg_stat_activity
          where datname = $1 and backend_type = 'client backend' and application_name <> 'ebb:test'`,
        [db.name],
      );
      peak = Math.max(peak, rows[0]!.n);
      listening.push(...rows[0]!.listen);
      samples++;
      await sleep(25);
    }
  })();

  // every schedule on one second a few seconds ahead, no spread: the midnight storm
  const { rows: [slot] } = await db.pool.query<{ at: Date; cron: string }>(
    `select date_trunc('second', now() + interval '6 seconds') as at,
            to_char(date_trunc('second', now() + interval '6 seconds') at time zone 'UTC', 'FMSS FMMI FMHH24') || ' * * *' as cron`);
  await q(`insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
           select 'test_sleep', i, $1, 'UTC', 0 from generate_series(1, $2) i`, [slot!.cron, SCHEDULES]);

  await waitFor(`${SCHEDULES} executions to end`, async () =>
    (await q("select count(*)::int as n from ebb.executions where status not in ('pending', 'running')"))[0].n >= SCHEDULES, 80_000, 250);
  sampling = false;
  await sampling$;
  await sampler.end();

  await assertStormOutcome(q, { schedules: SCHEDULES, tasksPerExecution: TASKS_PER_EXECUTION, processes: PROCESSES, slotAt: slot!.at });

  assert.ok(samples > 20 && peak >= 2, `the sampler saw PgBouncer's server connections (${samples} samples, peak ${peak})`);
  assert.ok(peak <= PGBOUNCER_POOL_SIZE,
    `server connections of the test database peaked at ${peak}, above PgBouncer's pool of ${PGBOUNCER_POOL_SIZE} (ebb clients: ${PROCESSES * EBB_POOL_SIZE})`);
  assert.deepEqual(listening, [], "no LISTEN reached PostgreSQL");

  for (const p of procs) p.child.kill("SIGTERM");
  const exits = await Promise.all(procs.map((p) => p.exited));
  for (const [i, p] of procs.entries()) {
    assert.equal(exits[i]!.code, 0, p.stderr().slice(-2000));
    assert.deepEqual(refusals(p.stderr()), [], "no refused connection and no prepared-statement error in ebb's output");
  }
  assert.deepEqual(refusals(bouncer.log()), [], "PgBouncer refused nobody");
  assert.doesNotMatch(bouncer.log(), /got packet 'A'/, "no notification reached a pooled server connection (no LISTEN through PgBouncer)");
  console.log(`# pgbouncer storm: peak server connections ${peak}/${PGBOUNCER_POOL_SIZE} for ${PROCESSES * EBB_POOL_SIZE} ebb client connections`);
});
