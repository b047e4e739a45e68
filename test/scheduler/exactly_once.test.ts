import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freshDatabase } from "../support/db.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";

test("3 scheduler processes racing over 1,000 schedules: every 2-second slot fires exactly once", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  // every 2 s, no spread; overlap = queue so unworked executions do not block the next slot
  await db.pool.query(`insert into ebb.schedules (kind, target_id, cron, overlap, spread_seconds)
                       select 'test_sleep', i, '*/2 * * * * *', 'queue', 0 from generate_series(1, 1000) i`);
  const env = { DATABASE_URL: db.url, EBB_ROLES: "scheduler", EBB_POOL_SIZE: "3", EBB_SCHEDULER_INTERVAL_MS: "200", EBB_LOG_LEVEL: "info" };
  const procs = [1, 2, 3].map(() => spawnTestEbb(env));
  await Promise.all(procs.map((p) => p.waitForReady()));
  let peak = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 9000) {
    const { rows } = await db.pool.query(
      "select count(*)::int as n from pg_stat_activity where datname = $1 and application_name like 'ebb:%' and application_name <> 'ebb:test'",
      [db.name],
    );
    peak = Math.max(peak, rows[0]?.n ?? 0);
    await sleep(100);
  }
  for (const p of procs) p.child.kill("SIGTERM");
  for (const p of procs) assert.equal((await p.exited).code, 0, p.stderr().slice(-2000));

  const { rows: slots } = await db.pool.query<{ fire_time: Date; n: number; schedules: number }>(
    `select fire_time, count(*)::int as n, count(distinct schedule_id)::int as schedules
       from ebb.executions group by fire_time order by fire_time`,
  );
  assert.ok(slots.length >= 3, `${slots.length} slots fired`);
  for (const s of slots) assert.deepEqual([s.n, s.schedules], [1000, 1000], `slot ${s.fire_time.toISOString()}`);
  for (let i = 1; i < slots.length; i++) {
    assert.equal(slots[i]!.fire_time.getTime() - slots[i - 1]!.fire_time.getTime(), 2000, "no slot skipped");
  }
  // what the processes say they fired adds up to the rows: nobody double counts, nothing lost
  const logged = procs.map((p) => p.logs.filter((l) => l.msg === "scheduler tick").reduce((n, l) => n + Number(l.fired), 0));
  assert.equal(logged.reduce((a, b) => a + b, 0), slots.length * 1000);
  // (which process leads is up to the advisory lock: one may lead every tick, and that is fine)
  // plan jobs: one per enqueued execution, added in batches
  const { rows: jobs } = await db.pool.query("select count(*)::int as n from ebb_worker._private_jobs");
  const { rows: enq } = await db.pool.query("select count(*)::int as n from ebb.executions where enqueued");
  assert.equal(jobs[0].n, enq[0].n);
  assert.ok(peak <= 9, `peak ${peak} connections of 3 processes with pool size 3`);
});
