import assert from "node:assert/strict";
import { test } from "node:test";
import { PlanStatements } from "../../src/executions/plan_statements.js";
import { TaskStatements } from "../../src/executions/task_statements.js";
import { freshDatabase } from "../support/db.js";
import { installTestKind } from "../support/test_kinds.js";

// Plan jobs and task jobs running side by side send their starts, task batches, claims and
// ends as one statement each (src/db/coalesced_statement.ts). Here several are made in the
// same turn of the event loop, as the worker's batched lane does, and every row must come out
// exactly as one statement per request would have written it.

test("coalesced starts, task batches, claims and ends write what one statement each would: payloads, groups, counts, log lines in order", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
  const ids: number[] = (await q("select ebb.trigger_execution('test_sleep', t) as id from generate_series(1, 3) t")).map((r) => r.id);
  const plans = new PlanStatements(db.pool);
  const tasks = new TaskStatements(db.pool);

  const started = await Promise.all(ids.map((id) => plans.start(id)));
  assert.deepEqual(started.map((s) => [s?.id, s?.status]), ids.map((id) => [id, "running"]));
  assert.equal(await plans.start(999_999), null, "an unknown execution is not started");

  const created = await Promise.all(ids.map((id, i) => plans.plan({
    executionId: id, maxAttempts: 3, groupSlots: 2, last: true,
    tasks: [
      { key: `a${i}`, payload: { n: i, nested: { quote: "it's" } } },
      { key: `b${i}`, group: "registry:1" },
    ],
  })));
  assert.deepEqual(created, [2, 2, 2]);
  const rows = await q(
    `select t.execution_id, t.key, t.task_group, t.payload, j.max_attempts, tk.identifier
       from ebb.tasks t join ebb_worker._private_jobs j on j.id = t.job_id
       join ebb_worker._private_tasks tk on tk.id = j.task_id order by t.execution_id, t.key`);
  assert.deepEqual(rows, ids.flatMap((id, i) => [
    { execution_id: id, key: `a${i}`, task_group: null, payload: { n: i, nested: { quote: "it's" } }, max_attempts: 3, identifier: "ebb.execution.task.ungrouped" },
    { execution_id: id, key: `b${i}`, task_group: "registry:1", payload: {}, max_attempts: 3, identifier: "ebb.execution.task" },
  ]));
  assert.deepEqual((await q("select planned from ebb.executions order by id")).map((r) => r.planned), [true, true, true]);

  const taskIds: number[] = (await q("select id from ebb.tasks order by id")).map((r) => r.id);
  const claimed = await Promise.all(taskIds.map((id) => tasks.claim(id)));
  assert.ok(claimed.every((c, i) => c?.id === taskIds[i] && c!.attempts === 1 && c!.kind === "test_sleep"), JSON.stringify(claimed));
  // the same task twice in one turn: the second claim is made after the first, not merged into it
  const [first, second] = await Promise.all([tasks.claim(taskIds[0]!), tasks.claim(taskIds[0]!)]);
  assert.deepEqual([first?.attempts, second?.attempts], [2, 3]);

  const at = new Date("2026-01-02T03:04:05.678Z");
  await Promise.all(claimed.map((c, i) => tasks.finish({
    taskId: c!.id, executionId: c!.execution_id, attempt: i === 0 ? 3 : 1, status: i % 2 ? "error" : "success",
    error: i % 2 ? `boom ${i}` : null, total: i, retained: 1, deleted: 2, errors: i % 2, details: i === 2 ? { why: "x" } : null,
    lines: [
      { level: "info", message: `first ${i}`, at },
      { level: "warn", message: `second ${i}`, at: new Date(at.getTime() + 1) },
    ],
  })));
  const ended = await q("select id, status, error, total, details from ebb.tasks order by id");
  assert.deepEqual(ended.map((t) => [t.status, t.error, t.total]), claimed.map((_, i) => [i % 2 ? "error" : "success", i % 2 ? `boom ${i}` : null, i]));
  assert.deepEqual(ended[2].details, { why: "x" });
  const logs = await q("select task_id, level, message, at from ebb.task_logs order by id");
  assert.deepEqual(logs.map((l) => [l.task_id, l.level, l.message]), taskIds.flatMap((id, i) => [[id, "info", `first ${i}`], [id, "warn", `second ${i}`]]));
  assert.equal(logs[0].at.toISOString(), at.toISOString());
  // each execution ended once its two tasks had: one error task in each -> error
  assert.deepEqual((await q("select status, tasks_total from ebb.executions order by id")), ids.map(() => ({ status: "error", tasks_total: 2 })));
});

test("a coalesced batch with one bad request: the others are written, the bad one alone fails naming the argument", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
  const [{ id }] = await q("select ebb.trigger_execution('test_sleep', 1) as id");
  const plans = new PlanStatements(db.pool);
  const tasks = new TaskStatements(db.pool);
  await plans.start(id);
  await plans.plan({ executionId: id, maxAttempts: 3, groupSlots: 1, last: true, tasks: [{ key: "a" }, { key: "b" }] });
  const [a, b] = await Promise.all((await q("select id from ebb.tasks order by id")).map((r) => tasks.claim(r.id)));
  const results = await Promise.allSettled([
    tasks.finish({ taskId: a!.id, executionId: id, attempt: 1, status: "success", error: null, total: 1, retained: 1, deleted: 0, errors: 0, details: null, lines: [] }),
    tasks.finish({ taskId: b!.id, executionId: id, attempt: 1, status: "finished?" as "success", error: null, total: 1, retained: 1, deleted: 0, errors: 0, details: null, lines: [] }),
  ]);
  assert.equal(results[0].status, "fulfilled");
  assert.equal(results[1].status, "rejected");
  assert.match(String((results[1] as PromiseRejectedResult).reason), /finish_task\.p_status/);
  assert.deepEqual((await q("select key, status from ebb.tasks order by id")).map((t) => [t.key, t.status]), [["a", "success"], ["b", "running"]]);
});

test("a scheduled execution's plan job plans from its payload: plan_tasks starts it; a stop requested before planning ends it stopped with no task", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
  // pending executions as the scheduler leaves them (no start yet)
  const ids: number[] = (await q(
    `insert into ebb.executions (kind, target_id, trigger, dry_run) select 'test_sleep', t, 'schedule', false
       from generate_series(1, 3) t returning id`)).map((r) => r.id);
  await q("update ebb.executions set stop_requested = true where id = $1", [ids[2]]);
  const plans = new PlanStatements(db.pool);
  // two batches for the first (started by the first, planned by the last), one for the second
  const first = await Promise.all([
    plans.plan({ executionId: ids[0]!, maxAttempts: 3, groupSlots: 1, last: false, tasks: [{ key: "a" }] }),
    plans.plan({ executionId: ids[1]!, maxAttempts: 3, groupSlots: 1, last: true, tasks: [{ key: "a" }] }),
    plans.plan({ executionId: ids[2]!, maxAttempts: 3, groupSlots: 1, last: true, tasks: [{ key: "a" }] }),
  ]);
  assert.deepEqual(first, [1, 1, -1]);
  const state = async () => (await q("select status, planned, started_at is not null as started, ended_at is not null as ended from ebb.executions order by id"));
  assert.deepEqual(await state(), [
    { status: "running", planned: false, started: true, ended: false },
    { status: "running", planned: true, started: true, ended: false },
    { status: "stopped", planned: true, started: true, ended: true },
  ]);
  assert.equal(await plans.plan({ executionId: ids[0]!, maxAttempts: 3, groupSlots: 1, last: true, tasks: [{ key: "b" }] }), 1);
  assert.deepEqual((await state())[0], { status: "running", planned: true, started: true, ended: false });
  assert.deepEqual((await q("select execution_id, key from ebb.tasks order by id")).map((t) => [t.execution_id, t.key]),
    [[ids[0], "a"], [ids[1], "a"], [ids[0], "b"]], "the stopped execution got no task");
});
