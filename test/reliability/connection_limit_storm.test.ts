import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { startPrivatePostgres } from "../support/private_postgres.js";
import { assertStormOutcome } from "../support/storm_checks.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";
import { queryRows } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";

const SCHEDULES = 300;
const TASKS_PER_EXECUTION = 2;
const POOL_SIZE = 8;
const PROCESSES = 3;

test(`max_connections=30, ${PROCESSES} ebb processes of pool ${POOL_SIZE}, ${SCHEDULES} schedules on one cron second: no "too many clients", every execution completes once, connections stay within the pools`, async () => {
  const server = await startPrivatePostgres({ postgresFlags: ["-c", "max_connections=30"] });
  // the test's own connections: one for setup and queries, one for the sampler
  const pool = createPool({ connectionString: server.url, max: 2, role: "test" });
  try {
    await migrate(pool);
    await installTestKind(pool);
    const q = queryRows(pool);
    assert.equal((await q("show max_connections"))[0].max_connections, "30");
    await q(
      `insert into public.test_kind_targets (target_id, tasks, sleep_ms)
       select i, $1, 100 from generate_series(1, $2) i`,
      [TASKS_PER_EXECUTION, SCHEDULES],
    );

    const env = {
      DATABASE_URL: server.url, EBB_POOL_SIZE: String(POOL_SIZE), EBB_WORKER_CONCURRENCY: "6",
      EBB_ROLES: "scheduler,worker", EBB_MIGRATE: "false", EBB_LOG_LEVEL: "info",
      EBB_SCHEDULER_INTERVAL_MS: "500", EBB_HEARTBEAT_INTERVAL_MS: "1000", EBB_DEAD_WORKER_TIMEOUT_MS: "10000",
    };
    const procs = Array.from({ length: PROCESSES }, () => spawnTestEbb(env));
    await Promise.all(procs.map((p) => p.waitForReady()));

    // Sample pg_stat_activity from now on: ebb's connections and every client backend.
    let peakEbb = 0;
    let peakClients = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await pool.query<{ ebb: number; clients: number }>(
          `select count(*) filter (where application_name like 'ebb:%' and application_name <> 'ebb:test')::int as ebb,
                  count(*)::int as clients
             from pg_stat_activity where backend_type = 'client backend'`);
        peakEbb = Math.max(peakEbb, rows[0]!.ebb);
        peakClients = Math.max(peakClients, rows[0]!.clients);
        await sleep(25);
      }
    })();

    // Every schedule on the same second, a few seconds ahead, no spread: the midnight storm.
    const { rows: [slot] } = await pool.query<{ at: Date; cron: string }>(
      `select date_trunc('second', now() + interval '4 seconds') as at,
              to_char(date_trunc('second', now() + interval '4 seconds') at time zone 'UTC', 'FMSS FMMI FMHH24') || ' * * *' as cron`);
    await q(
      `insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
       select 'test_sleep', i, $1, 'UTC', 0 from generate_series(1, $2) i`,
      [slot!.cron, SCHEDULES],
    );

    await waitFor(`${SCHEDULES} executions to end`, async () =>
      (await q("select count(*)::int as n from ebb.executions where status not in ('pending', 'running')"))[0].n >= SCHEDULES, 75_000);
    sampling = false;
    await sampler;

    await assertStormOutcome(q, { schedules: SCHEDULES, tasksPerExecution: TASKS_PER_EXECUTION, processes: PROCESSES, slotAt: slot!.at });

    assert.ok(peakEbb <= PROCESSES * POOL_SIZE, `peak ebb connections ${peakEbb} > ${PROCESSES * POOL_SIZE}`);
    assert.ok(peakEbb >= PROCESSES * 2, `the sampler saw ebb's connections (peak ${peakEbb})`);
    assert.ok(peakClients <= PROCESSES * POOL_SIZE + 2, `peak client backends ${peakClients} > ebb pools + the test's 2`);

    for (const p of procs) p.child.kill("SIGTERM");
    const exits = await Promise.all(procs.map((p) => p.exited));
    for (const [i, p] of procs.entries()) {
      assert.equal(exits[i]!.code, 0, p.stderr().slice(-2000));
      assert.doesNotMatch(p.stderr(), /too many clients|remaining connection slots/i);
    }
    assert.ok(server.log.length > 0, "the server log was captured");
    const refused = server.log.filter((l) => /too many clients|remaining connection slots/i.test(l));
    assert.deepEqual(refused, [], "PostgreSQL never refused a connection");
    console.log(`# storm: peak ebb connections ${peakEbb}/${PROCESSES * POOL_SIZE}, peak client backends ${peakClients}`);
  } finally {
    await pool.end();
  }
});
