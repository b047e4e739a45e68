import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../src/config/load.js";
import { Writable } from "node:stream";
import { pino } from "pino";
import { startService } from "../../src/service/service.js";
import { freshDatabase } from "../support/db.js";
import { installTestKind, testSleepKind } from "../support/test_kinds.js";

test("select ebb.trigger_execution(...) from plain SQL starts an execution that the workers run to the end; task logs carry their context", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  await db.pool.query("insert into public.test_kind_targets (target_id, tasks) values (7, 3)");
  const { q } = db;

  // refused input names the argument, and nothing is written
  await assert.rejects(db.pool.query("select ebb.trigger_execution('test_sleep', 0)"), /trigger_execution\.target_id: must be a positive whole number/);
  await assert.rejects(db.pool.query("select ebb.trigger_execution('no_such_kind', 1)"), /executions_kind_fkey/);
  assert.equal((await q("select count(*)::int as n from ebb.executions"))[0].n, 0);
  assert.equal((await q("select count(*)::int as n from ebb_worker.jobs"))[0].n, 0);

  const [{ id }] = await q("select ebb.trigger_execution('test_sleep', 7, true) as id");
  const [row] = await q("select kind, target_id, trigger, dry_run, status, enqueued, plan_job_id is not null as has_job from ebb.executions where id = $1", [id]);
  assert.deepEqual(row, { kind: "test_sleep", target_id: 7, trigger: "manual", dry_run: true, status: "pending", enqueued: true, has_job: true });

  const config = loadConfig({ DATABASE_URL: db.url, EBB_ROLES: "worker", EBB_POOL_SIZE: "4", EBB_WORKER_CONCURRENCY: "2" });
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l)); done(); } });
  const service = await startService(config, pino({ level: "info" }, sink), { extraKinds: [testSleepKind] });
  try {
    let status = "pending";
    for (let i = 0; i < 200 && (status === "pending" || status === "running"); i++) {
      status = (await q("select status from ebb.executions where id = $1", [id]))[0].status;
      if (status === "pending" || status === "running") await sleep(100);
    }
    assert.equal(status, "success");
    assert.equal((await q("select count(*)::int as n from public.test_task_runs where execution_id = $1", [id]))[0].n, 3);
    // each task log line is also in the process log, with its execution, task and key
    const taskLines = lines.filter((l) => l.executionId === id && typeof l.msg === "string" && l.msg.startsWith("done task-"));
    assert.equal(taskLines.length, 3);
    for (const l of taskLines) {
      assert.equal(l.kind, "test_sleep");
      assert.equal(l.msg, `done ${l.key}`);
      assert.equal(typeof l.taskId, "number");
    }
  } finally {
    await service.stop("test done");
  }
});
