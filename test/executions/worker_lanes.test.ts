import assert from "node:assert/strict";
import { test } from "node:test";
import { Writable } from "node:stream";
import { pino } from "pino";
import { loadConfig } from "../../src/config/load.js";
import { startService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { installTestKind, testSleepKind } from "../support/test_kinds.js";
import { waitFor } from "../support/wait_for.js";

// The worker runs jobs in two lanes (src/worker/runner.ts, ebb.plan_task_batches): plan jobs and
// tasks without a group are fetched in batches (localQueue) and completed in batches; tasks
// with a group stay in their group's named queue, fetched one at a time.

test("plan_tasks gives a grouped task the one-by-one job in its group's named queue, an ungrouped one the batched job without a queue", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const { q } = db;
  const [{ id }] = await q("select ebb.trigger_execution('test_sleep', 1) as id");
  await q("select ebb.plan_tasks($1, array['a', 'b'], array['registry:7', null], array[null, null]::jsonb[], 5, 4, true)", [id]);
  const jobs = await q(
    `select t.key, tk.identifier, q.queue_name
       from ebb.tasks t
       join ebb_worker._private_jobs j on j.id = t.job_id
       join ebb_worker._private_tasks tk on tk.id = j.task_id
       left join ebb_worker._private_job_queues q on q.id = j.job_queue_id
      where t.execution_id = $1 order by t.key`, [id]);
  const [a] = await q("select id from ebb.tasks where execution_id = $1 and key = 'a'", [id]);
  assert.deepEqual(jobs, [
    { key: "a", identifier: "ebb.execution.task", queue_name: `ebb:test_sleep:registry:7:${Number(a.id) % 4}` },
    { key: "b", identifier: "ebb.execution.task.ungrouped", queue_name: null },
  ]);
});

test("batched jobs waiting in the local queue longer than the orphan sweep's age are neither released nor run twice; both lanes together run at most workerConcurrency tasks", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const { q } = db;
  // 24 ungrouped tasks of 500 ms at concurrency 2: ~6 s, most of it spent by jobs locked in
  // the local queue (size 20) - longer than the sweep's minimum age (5 s); 4 grouped ones too
  await q("insert into public.test_kind_targets (target_id, tasks, sleep_ms) values (1, 24, 500)");
  await q("insert into public.test_kind_targets (target_id, tasks, sleep_ms, task_group) values (2, 4, 500, 'registry:1')");
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _e, done) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l)); done(); } });
  const config = loadConfig({
    DATABASE_URL: db.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "6", EBB_WORKER_CONCURRENCY: "2",
    EBB_WORKER_LOCAL_QUEUE_SIZE: "20", EBB_HEARTBEAT_INTERVAL_MS: "300",
  });
  const service = await startService(config, pino({ level: "info" }, sink), { extraKinds: [testSleepKind] });
  try {
    const ids = (await q("select ebb.trigger_execution('test_sleep', t) as id from unnest(array[1, 2]) t")).map((r) => r.id);
    const statuses = await waitFor("both executions to end", async () => {
      const rows = await q("select status from ebb.executions where id = any($1) and status not in ('pending', 'running')", [ids]);
      return rows.length === 2 ? rows.map((r) => r.status) : null;
    }, 60_000, 200);
    assert.deepEqual(statuses, ["success", "success"]);
    const runs = await q("select task_id, count(*)::int as n from public.test_task_runs group by task_id");
    assert.equal(runs.length, 28, "every task ran");
    assert.ok(runs.every((r) => r.n === 1), "no task ran twice");
    assert.deepEqual(await q("select attempts, count(*)::int as n from ebb.tasks group by attempts"), [{ attempts: 1, n: 28 }]);
    assert.ok(!lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("released jobs")), "no waiting job was released by the sweep");
    // the most task runs in flight at one moment, over both lanes
    const [{ peak }] = await q(
      `select max(n)::int as peak from (
         select sum(d) over (order by at, d rows unbounded preceding) as n
           from (select started_at as at, 1 as d from public.test_task_runs
                 union all select at, -1 from public.test_task_runs) e) s`);
    assert.ok(peak <= 2, `at most 2 tasks at once (workerConcurrency), saw ${peak}`);
    assert.equal(peak, 2, "tasks did run side by side");
  } finally {
    await service.stop("test end");
  }
});
