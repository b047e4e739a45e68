import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { DatabaseWeather } from "../../src/db/database_weather.js";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { startPrivatePostgres } from "../support/private_postgres.js";
import { assertStormOutcome } from "../support/storm_checks.js";
import { installTestKind, spawnTestEbb, type TestEbb } from "../support/test_kinds.js";
import { waitFor } from "../support/wait_for.js";

// "Too many clients" is weather: PostgreSQL refusing ebb's new connections (SQLSTATE 53300)
// while a storm fires. ebb waits with backoff and resumes; no process exits, every slot fires
// once, every execution ends. Private servers with a small max_connections.

const TASKS_PER_EXECUTION = 2;

/** The test's own pool: its connections wait out refusals too (they are not what is tested). */
function testPool(url: string) {
  const quiet = { warn() {}, info() {} };
  return createPool({ connectionString: url, max: 2, min: 2, role: "test", weather: new DatabaseWeather(quiet) });
}

const isUnavailable = (l: Record<string, unknown>) => typeof l.msg === "string" && l.msg.startsWith("database unavailable");
const isBack = (l: Record<string, unknown>) => l.msg === "database available again";

/** Every outage logged is logged once: start and end lines alternate, each start with its SQLSTATE. */
function assertEpisodesLoggedOnce(ebb: TestEbb, opts: { lastMayBeOpen?: boolean } = {}): { episodes: number; refusals: number } {
  const lines = ebb.logs.filter((l) => isUnavailable(l) || isBack(l));
  let open = false;
  let refusals = 0;
  for (const l of lines) {
    if (isUnavailable(l)) {
      assert.equal(open, false, "a second start line inside one outage");
      assert.equal(typeof l.sqlstate, "string");
      open = true;
    } else {
      assert.equal(open, true, "an end line without a start");
      refusals += Number(l.refusals);
      open = false;
    }
  }
  if (!opts.lastMayBeOpen) assert.equal(open, false, "the last outage ended");
  return { episodes: lines.filter(isUnavailable).length, refusals };
}

async function schedulesOnOneSecond(pool: pg.Pool, schedules: number, aheadSeconds: number): Promise<Date> {
  const { rows: [slot] } = await pool.query<{ at: Date; cron: string }>(
    `select date_trunc('second', now() + $1 * interval '1 second') as at,
            to_char(date_trunc('second', now() + $1 * interval '1 second') at time zone 'UTC', 'FMSS FMMI FMHH24') || ' * * *' as cron`,
    [aheadSeconds]);
  await pool.query(
    `insert into ebb.schedules (kind, target_id, cron, timezone, spread_seconds)
     select 'test_sleep', i, $1, 'UTC', 0 from generate_series(1, $2) i`,
    [slot!.cron, schedules],
  );
  return slot!.at;
}

test("a neighbour takes every free slot while 200 schedules fire on one second: ebb waits (503 on /readyz, ebb_database_unavailable 1), never exits, every slot fires once and every execution ends once the neighbour lets go", async () => {
  const SCHEDULES = 200;
  const server = await startPrivatePostgres({ postgresFlags: ["-c", "max_connections=30"] });
  // the test's own connections, kept open (min) so the neighbour does not take them
  const pool = testPool(server.url);
  const neighbour = createPool({ connectionString: server.url, max: 40, role: "neighbour" }); // fails fast: no weather
  const held: pg.PoolClient[] = [];
  try {
    await migrate(pool);
    await installTestKind(pool);
    const q = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;
    await Promise.all([q("select pg_sleep(0.05)"), q("select pg_sleep(0.05)")]); // both test connections open
    await q(`insert into public.test_kind_targets (target_id, tasks, sleep_ms) select i, $1, 20 from generate_series(1, $2) i`,
      [TASKS_PER_EXECUTION, SCHEDULES]);

    // another application holds all but 5 of the free slots before ebb starts (pool 10)
    const grab = async () => {
      for (;;) {
        try {
          held.push(await neighbour.connect());
        } catch {
          return;
        }
      }
    };
    await grab();
    for (const c of held.splice(0, 5)) c.release(true);
    const ebb = spawnTestEbb({
      DATABASE_URL: server.url, EBB_POOL_SIZE: "10", EBB_ROLES: "scheduler,worker,http", EBB_HTTP_PORT: "0",
      EBB_MIGRATE: "false", EBB_LOG_LEVEL: "info", EBB_SCHEDULER_INTERVAL_MS: "500",
      EBB_HEARTBEAT_INTERVAL_MS: "1000", EBB_DEAD_WORKER_TIMEOUT_MS: "60000",
    });
    const ready = await ebb.waitForLog((l) => l.msg === "ebb ready", 120_000);
    const http = String(ready.http);
    const metric = async (name: string) => {
      const body = await (await fetch(`${http}/metrics`)).text();
      return body.split("\n").filter((l) => l.startsWith(name)).map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))] as const);
    };
    const ebbConnections = async () =>
      (await q("select count(*)::int as n from pg_stat_activity where application_name like 'ebb:scheduler%'"))[0].n as number;

    // the slot is a few seconds ahead; the neighbour takes every slot still free
    const slotAt = await schedulesOnOneSecond(pool, SCHEDULES, 5);
    await grab();
    console.log(`# neighbour holds ${held.length} connections; ebb holds ${await ebbConnections()} of its 10`);

    // the storm needs connections the server has none left of: ebb waits and says so
    const seen = await waitFor("/readyz to report the refusals", async () => {
      const r = await fetch(`${http}/readyz`);
      const body = (await r.json()) as { reason?: string };
      return r.status === 503 && /53300/.test(body.reason ?? "") ? body : undefined;
    }, 30_000, 100);
    assert.match(String(seen.reason), /database unavailable since .*53300/);
    assert.deepEqual(await metric("ebb_database_unavailable"), [["ebb_database_unavailable", 1]]);
    const refusals = await metric("ebb_database_refusals_total{");
    assert.ok(refusals.some(([k, n]) => k.includes('sqlstate="53300"') && n > 0), JSON.stringify(refusals));
    // the outage lasts a while: ebb stays up
    await sleep(6000);
    assert.equal(ebb.child.exitCode, null, `ebb exited during the outage; stderr:\n${ebb.stderr().slice(-3000)}`);
    const openDuring = (await q("select count(*)::int as n from ebb.executions where status in ('pending', 'running')"))[0].n;
    const tasksRun = (await q("select count(*)::int as n from public.test_task_runs"))[0].n;
    console.log(`# after 6 s of refusals: ${openDuring} of ${SCHEDULES} executions open, ${tasksRun} tasks run`);

    for (const c of held.splice(0)) c.release(true);
    await neighbour.end();
    await waitFor(`${SCHEDULES} executions to end`, async () =>
      (await q("select count(*)::int as n from ebb.executions where status not in ('pending', 'running')"))[0].n >= SCHEDULES, 120_000, 250);
    await assertStormOutcome(q, { schedules: SCHEDULES, tasksPerExecution: TASKS_PER_EXECUTION, processes: 1, slotAt });

    await waitFor("/readyz 200 again", async () => (await fetch(`${http}/readyz`)).status === 200, 30_000);
    assert.deepEqual(await metric("ebb_database_unavailable"), [["ebb_database_unavailable", 0]]);
    assert.ok(!ebb.logs.some((l) => typeof l.msg === "string" && /fatal|uncaught/.test(l.msg)), ebb.stderr().slice(-3000));
    ebb.child.kill("SIGTERM");
    assert.equal((await ebb.exited).code, 0, ebb.stderr().slice(-3000));
    const { episodes, refusals: logged } = assertEpisodesLoggedOnce(ebb);
    assert.ok(episodes >= 1);
    console.log(`# outages logged: ${episodes} (${logged} refusals/lost connections in them)`);
    assert.ok(server.log.some((l) => /too many clients/.test(l)), "PostgreSQL did refuse connections");
  } finally {
    for (const c of held) c.release();
    if (!neighbour.ended) await neighbour.end();
    await pool.end();
  }
});

test("3 ebb processes whose pools together exceed max_connections (3 x 10 on 20), 300 schedules on one second: no process exits, every slot fires once, all work done", async () => {
  const SCHEDULES = 300;
  const PROCESSES = 3;
  const server = await startPrivatePostgres({ postgresFlags: ["-c", "max_connections=20"] });
  const pool = testPool(server.url);
  try {
    await migrate(pool);
    await installTestKind(pool);
    const q = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;
    await q(`insert into public.test_kind_targets (target_id, tasks, sleep_ms) select i, $1, 50 from generate_series(1, $2) i`,
      [TASKS_PER_EXECUTION, SCHEDULES]);
    const env = {
      DATABASE_URL: server.url, EBB_POOL_SIZE: "10", EBB_ROLES: "scheduler,worker", EBB_MIGRATE: "false", EBB_LOG_LEVEL: "info",
      EBB_SCHEDULER_INTERVAL_MS: "500", EBB_HEARTBEAT_INTERVAL_MS: "1000", EBB_DEAD_WORKER_TIMEOUT_MS: "60000",
    };
    const procs = Array.from({ length: PROCESSES }, () => spawnTestEbb(env));
    await Promise.all(procs.map((p) => p.waitForLog((l) => l.msg === "ebb ready", 120_000)));
    const slotAt = await schedulesOnOneSecond(pool, SCHEDULES, 4);

    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where backend_type = 'client backend'");
        peak = Math.max(peak, rows[0]!.n);
        await sleep(50);
      }
    })();
    await waitFor(`${SCHEDULES} executions to end`, async () =>
      (await q("select count(*)::int as n from ebb.executions where status not in ('pending', 'running')"))[0].n >= SCHEDULES, 180_000, 250);
    sampling = false;
    await sampler;
    await assertStormOutcome(q, { schedules: SCHEDULES, tasksPerExecution: TASKS_PER_EXECUTION, processes: PROCESSES, slotAt });

    for (const [i, p] of procs.entries()) {
      assert.equal(p.child.exitCode, null, `process ${i} exited; stderr:\n${p.stderr().slice(-3000)}`);
      p.child.kill("SIGTERM");
    }
    const exits = await Promise.all(procs.map((p) => p.exited));
    let episodes = 0;
    for (const [i, p] of procs.entries()) {
      assert.equal(exits[i]!.code, 0, p.stderr().slice(-3000));
      assert.ok(!p.logs.some((l) => typeof l.msg === "string" && /fatal|uncaught/.test(l.msg)), p.stderr().slice(-3000));
      // pools that together exceed max_connections keep asking for more while idle workers
      // poll: the refusals (and the outage) may go on after the work is done
      episodes += assertEpisodesLoggedOnce(p, { lastMayBeOpen: true }).episodes;
    }
    const refused = server.log.filter((l) => /too many clients/.test(l)).length;
    console.log(`# peak client backends ${peak} of 20; PostgreSQL refused ${refused} connections; outages logged by the 3 processes: ${episodes}`);
  } finally {
    await pool.end();
  }
});
