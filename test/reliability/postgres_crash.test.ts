import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { migrate } from "../../src/db/migrate.js";
import { createPool } from "../../src/db/pool.js";
import { startPrivatePostgres } from "../support/private_postgres.js";
import { installTestKind, spawnTestEbb } from "../support/test_kinds.js";
import { waitFor } from "../support/wait_for.js";
import { queryRows } from "../support/db.js";

// The worker's bookkeeping (task claims and ends, plan batches) commits with synchronous_commit
// off (EBB_WORKER_ASYNC_COMMIT, src/db/bookkeeping_statement.ts): a PostgreSQL crash may undo
// the last moments of it. Here PostgreSQL crashes (immediate shutdown: WAL not yet flushed is
// lost) while one ebb process ends tasks as fast as it can. After crash recovery nothing may
// be lost or stuck: the execution ends in success with every task ended once in the
// database, each task's counts are those of a complete run, and no job is left behind. And
// the same process carries on (src/worker/worker_lane.ts restarts a lane whose pool died).
test("PostgreSQL crashes while tasks end by the hundred (async-commit bookkeeping): after recovery the execution succeeds, every task ended once, nothing stuck or left queued", async (t) => {
  const server = await startPrivatePostgres();
  const pool = createPool({ connectionString: server.url, max: 2, role: "test" });
  await migrate(pool);
  await installTestKind(pool);
  const tasks = 3000;
  await pool.query("insert into public.test_kind_targets (target_id, tasks, batch, sleep_ms) values (1, $1, 500, 0)", [tasks]);
  const env = {
    DATABASE_URL: server.url, EBB_POOL_SIZE: "8", EBB_ROLES: "scheduler,worker", EBB_MIGRATE: "false",
    EBB_LOG_LEVEL: "info", EBB_HEARTBEAT_INTERVAL_MS: "500", EBB_DEAD_WORKER_TIMEOUT_MS: "5000",
  };
  const ebb = spawnTestEbb(env);
  await ebb.waitForReady();
  const { rows: [{ id }] } = await pool.query("select ebb.trigger_execution('test_sleep', 1, false) as id");
  await waitFor("a few hundred tasks ended", async () =>
    (await pool.query("select count(*)::int as n from ebb.tasks where status = 'success'")).rows[0].n >= 300, 60_000);
  await pool.end();
  await server.crash();
  await sleep(500);
  await server.start();

  const pool2 = createPool({ connectionString: server.url, max: 2, role: "test" });
  const q = queryRows(pool2);
  try {
    assert.ok(server.log.some((l) => /database system was interrupted|automatic recovery in progress|redo starts/i.test(l)),
      "PostgreSQL ran crash recovery");
    const done = await waitFor("the execution to end", async () => {
      if (ebb.child.exitCode !== null) return { status: "ebb exited", error: ebb.logs.filter((l) => Number(l.level) >= 40).slice(0, 12).map((l) => `${String(l.msg).slice(0, 300)} ${JSON.stringify(l.err ?? "").slice(0, 300)}`).join("\n") };
      return (await q("select status, error, tasks_total, total, retained, deleted from ebb.executions where id = $1 and status not in ('pending', 'running')", [id]))[0];
    }, 120_000);
    const byStatus = await q("select status, count(*)::int as n from ebb.tasks where execution_id = $1 group by 1", [id]);
    assert.equal(done.status, "success", `execution ended ${done.status}: ${done.error}; tasks ${JSON.stringify(byStatus)}`);
    assert.deepEqual(byStatus, [{ status: "success", n: tasks }], "no task lost");
    assert.equal(done.tasks_total, tasks);
    // each task's counts are those of one complete run (retained 1, deleted 2), summed once
    assert.deepEqual([Number(done.retained), Number(done.deleted)], [tasks, 2 * tasks]);
    const keys = await q("select count(distinct key)::int as n, count(*)::int as rows from ebb.tasks where execution_id = $1", [id]);
    assert.deepEqual(keys, [{ n: tasks, rows: tasks }], "no task planned twice");
    const runs = await q("select count(distinct task_id)::int as n from public.test_task_runs");
    assert.equal(runs[0].n, tasks, "every task ran to completion (tasks that ended just before the crash may have run again)");
    await waitFor("no job left in graphile-worker's queue", async () =>
      (await q("select count(*)::int as n from ebb_worker._private_jobs"))[0].n === 0, 30_000);
    assert.equal((await q("select count(*)::int as n from ebb.executions where status in ('pending', 'running')"))[0].n, 0);
    // the same process carried on: a worker lane whose pool died with the crash (graphile-worker
    // gives a pool up when a batched completion fails) was restarted in place
    assert.equal(ebb.child.exitCode, null, "ebb is still running");
    t.diagnostic(`worker lanes restarted: ${ebb.logs.filter((l) => l.msg === "worker lane restarted: the dead pool's jobs were released and run again").length}`);
    assert.ok(!ebb.logs.some((l) => typeof l.msg === "string" && /^(fatal error|uncaught error)/.test(l.msg)),
      ebb.logs.filter((l) => Number(l.level) >= 50).map((l) => String(l.msg)).join("\n"));
  } finally {
    await pool2.end();
    ebb.child.kill("SIGTERM");
    await ebb.exited;
  }
});
