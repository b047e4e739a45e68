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
  const { q } = db;
  const ids: number[] = (await q("select ebb.trigger_execution('test_sleep', t) as id from generate_series(1, 3) t")).map((r) => r.id);
  const plans = new PlanStatements(db.pool, { prepared: true, asyncCommit: true });
  const tasks = new TaskStatements(db.pool, { prepared: true, asyncCommit: true });

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
  const { q } = db;
  const [{ id }] = await q("select ebb.trigger_execution('test_sleep', 1) as id");
  const plans = new PlanStatements(db.pool, { prepared: true, asyncCommit: true });
  const tasks = new TaskStatements(db.pool, { prepared: true, asyncCommit: true });
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
  const { q } = db;
  // pending executions as the scheduler leaves them (no start yet)
  const ids: number[] = (await q(
    `insert into ebb.executions (kind, target_id, trigger, dry_run) select 'test_sleep', t, 'schedule', false
       from generate_series(1, 3) t returning id`)).map((r) => r.id);
  await q("update ebb.executions set stop_requested = true where id = $1", [ids[2]]);
  const plans = new PlanStatements(db.pool, { prepared: true, asyncCommit: true });
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

test("ebb.plan_task_batches (the coalesced plan statement): per execution what ebb.plan_tasks does - new keys only, stops, planning done, an unknown execution named", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const { q } = db;
  const ids: number[] = (await q(
    `insert into ebb.executions (kind, target_id, trigger, dry_run) select 'test_sleep', t, 'schedule', false
       from generate_series(1, 4) t returning id`)).map((r) => r.id);
  await q("update ebb.executions set stop_requested = true where id = $1", [ids[2]]);
  const batch = (executionId: number, keys: string[], last: boolean, groups: (string | null)[] = keys.map(() => null)) =>
    ({ execution_id: executionId, keys, groups, payloads: keys.map((k) => ({ k })), max_attempts: 4, group_slots: 2, last });
  const call = async (batches: unknown[]) =>
    new Map((await q("select execution_id, created from ebb.plan_task_batches($1::jsonb)", [JSON.stringify(batches)]))
      .map((r) => [Number(r.execution_id), r.created]));

  // the second execution's batch comes first: answers are per execution, not per position
  assert.deepEqual(await call([
    batch(ids[1]!, ["x", "y", "z"], false, [null, "registry:1", "registry:1"]),
    batch(ids[0]!, ["a", "b"], false),
    batch(ids[2]!, ["s"], true),
    batch(ids[3]!, [], true),
  ]), new Map([[ids[1], 3], [ids[0], 2], [ids[2], -1], [ids[3], 0]]));
  // a re-run after a crash: known keys skipped; the last batch marks the planning done
  assert.deepEqual(await call([batch(ids[0]!, ["b", "c"], true), batch(ids[1]!, ["z"], true)]), new Map([[ids[0], 1], [ids[1], 0]]));

  assert.deepEqual(await q("select status, planned, started_at is not null as started, ended_at is not null as ended from ebb.executions order by id"), [
    { status: "running", planned: true, started: true, ended: false },
    { status: "running", planned: true, started: true, ended: false },
    { status: "stopped", planned: true, started: true, ended: true },
    { status: "success", planned: true, started: true, ended: true },
  ]);
  const tasks = await q(
    `select t.execution_id, t.key, t.task_group, t.payload, j.max_attempts, tk.identifier, q.queue_name
       from ebb.tasks t join ebb_worker._private_jobs j on j.id = t.job_id
       join ebb_worker._private_tasks tk on tk.id = j.task_id
       left join ebb_worker._private_job_queues q on q.id = j.job_queue_id order by t.id`);
  const taskIds: number[] = (await q("select id from ebb.tasks order by id")).map((r) => r.id);
  // task ids in execution order and, within a batch, in key order (as ebb.plan_tasks gives them)
  assert.deepEqual(tasks.map((t) => [t.execution_id, t.key]), [[ids[0], "a"], [ids[0], "b"], [ids[1], "x"], [ids[1], "y"], [ids[1], "z"], [ids[0], "c"]]);
  assert.deepEqual(tasks.map((t) => t.payload), [{ k: "a" }, { k: "b" }, { k: "x" }, { k: "y" }, { k: "z" }, { k: "c" }]);
  assert.ok(tasks.every((t) => t.max_attempts === 4));
  assert.deepEqual(tasks.map((t, i) => [t.identifier, t.queue_name]), tasks.map((t, i) => t.task_group
    ? ["ebb.execution.task", `ebb:test_sleep:registry:1:${taskIds[i]! % 2}`]
    : ["ebb.execution.task.ungrouped", null]));

  await assert.rejects(call([batch(ids[0]!, ["d"], true), batch(987_654, ["a"], true)]), /plan_task_batches\.p_batches: no execution 987654/);
  assert.equal((await q("select count(*)::int as n from ebb.tasks where key = 'd'"))[0].n, 0, "nothing of a failed call is written");
});

test("async-commit bookkeeping turns synchronous_commit off for its own transactions only: the connection's next statements commit as the database says", async () => {
  // one connection: every statement below runs on the same session
  const db = await freshDatabase(undefined, { poolSize: 1 });
  await installTestKind(db.pool);
  const { q } = db;
  const show = async () => (await q("show synchronous_commit"))[0].synchronous_commit;
  for (const asyncCommit of [true, false]) {
    const ids: number[] = (await q("select ebb.trigger_execution('test_sleep', t) as id from generate_series(1, 2) t")).map((r) => r.id);
    const plans = new PlanStatements(db.pool, { prepared: true, asyncCommit });
    const tasks = new TaskStatements(db.pool, { prepared: true, asyncCommit });
    // two of each in one turn: the batch statements (plan_task_batches, the claim, FINISH_MANY)
    await Promise.all(ids.map((id) => plans.plan({ executionId: id, maxAttempts: 3, groupSlots: 1, last: true, tasks: [{ key: "a" }] })));
    assert.equal(await show(), "on", `asyncCommit ${asyncCommit}: after the plan batch`);
    const open = (await q("select id from ebb.tasks where execution_id = any ($1) order by id", [ids])).map((r) => r.id);
    const claimed = await Promise.all(open.map((t) => tasks.claim(t)));
    assert.equal(await show(), "on", `asyncCommit ${asyncCommit}: after the claims`);
    await Promise.all(claimed.map((c) => tasks.finish({ taskId: c!.id, executionId: c!.execution_id, attempt: 1, status: "success", error: null, total: 1, retained: 1, deleted: 0, errors: 0, details: null, lines: [] })));
    assert.equal(await show(), "on", `asyncCommit ${asyncCommit}: after the ends`);
    assert.deepEqual((await q("select status from ebb.executions where id = any ($1)", [ids])).map((r) => r.status), ["success", "success"]);
  }
});

test("ebb.plan_tasks, the one-execution function for operators, plans as the worker's batches do: new keys only, a stop ends the execution, an unknown execution named", async () => {
  const db = await freshDatabase();
  await installTestKind(db.pool);
  const { q } = db;
  const ids: number[] = (await q(
    `insert into ebb.executions (kind, target_id, trigger, dry_run) select 'test_sleep', t, 'schedule', false
       from generate_series(1, 2) t returning id`)).map((r) => r.id);
  await q("update ebb.executions set stop_requested = true where id = $1", [ids[1]]);
  const planTasks = async (id: number, keys: string[], last: boolean) =>
    (await q("select ebb.plan_tasks($1, $2, $3, $4::jsonb[], 3, 2, $5) as created",
      [id, keys, keys.map(() => null), keys.map((k) => JSON.stringify({ k })), last]))[0].created;
  assert.equal(await planTasks(ids[0]!, ["a", "b"], false), 2);
  assert.equal(await planTasks(ids[0]!, ["b", "c"], true), 1, "a known key is skipped");
  assert.equal(await planTasks(ids[1]!, ["a"], true), -1, "a stop requested: nothing planned");
  assert.deepEqual(await q("select status, planned from ebb.executions order by id"), [
    { status: "running", planned: true },
    { status: "stopped", planned: true },
  ]);
  assert.deepEqual((await q("select key, payload from ebb.tasks order by id")).map((t) => [t.key, t.payload]), [["a", { k: "a" }], ["b", { k: "b" }], ["c", { k: "c" }]]);
  await assert.rejects(planTasks(987_654, ["a"], true), /plan_tasks\.p_execution_id: no execution 987654/);
});
