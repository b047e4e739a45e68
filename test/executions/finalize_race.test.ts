import assert from "node:assert/strict";
import { test } from "node:test";
import { freshDatabase } from "../support/db.js";

// The last finisher of an execution ends it, whoever that is: tasks finishing on many
// connections at the same moment as the planner marks the planning done. Without the
// per-execution lock in ebb.finalize_execution two finishers can each see the other's task
// still open (neither committed) and the execution stays 'running' for ever.
test("tasks and the planner finishing at the same moment on many connections: the execution ends once, with every task counted", async () => {
  const db = await freshDatabase(undefined, { poolSize: 12 });
  const { q } = db;
  const TASKS = 40;
  for (let round = 0; round < 15; round++) {
    const [{ id }] = await q("insert into ebb.executions (kind, target_id, trigger, status, started_at) values ('sync', $1, 'manual', 'running', now()) returning id", [round + 1]);
    const tasks = await q(
      `insert into ebb.tasks (execution_id, key, status, attempts, started_at)
       select $1, 'repo-' || g, 'running', 1, now() from generate_series(1, $2::int) g returning id`,
      [id, TASKS],
    );
    // round 0..4: one task fails; 5..9: one is stopped; else all succeed
    const statusOf = (i: number) => (i === 7 && round < 5 ? "error" : i === 7 && round < 10 ? "stopped" : "success");
    const results = await Promise.all([
      ...tasks.map((t, i) =>
        db.pool.query<{ s: string | null }>("select ebb.finish_task($1, 1, $2, null, 3, 2, 1, 0, null) as s", [t.id, statusOf(i)])),
      db.pool.query<{ s: string | null }>("select ebb.finish_planning($1) as s", [id]),
    ]);
    const enders = results.map((r) => r.rows[0]!.s).filter((s) => s !== null);
    const expected = round < 5 ? "error" : round < 10 ? "stopped" : "success";
    assert.deepEqual(enders, [expected], `round ${round}: exactly one call ended the execution`);
    const [e] = await q("select status, tasks_total, total, retained, deleted, ended_at is not null as ended from ebb.executions where id = $1", [id]);
    assert.deepEqual(e, { status: expected, tasks_total: TASKS, total: 3 * TASKS, retained: 2 * TASKS, deleted: TASKS, ended: true });
  }
});

test("finish_task: a late finisher of a replaced attempt changes nothing; a bad status is refused naming the argument", async () => {
  const db = await freshDatabase();
  const { q } = db;
  const [{ id }] = await q("insert into ebb.executions (kind, target_id, trigger, status, started_at, planned) values ('sync', 1, 'manual', 'running', now(), true) returning id");
  const [task] = await q("insert into ebb.tasks (execution_id, key, status, attempts) values ($1, 'a', 'running', 2) returning id", [id]);
  // attempt 1 was declared dead and the task runs again as attempt 2: attempt 1's end is ignored
  assert.deepEqual(await q("select ebb.finish_task($1, 1, 'error', 'late', 0, 0, 0, 0, null) as s", [task.id]), [{ s: null }]);
  assert.deepEqual(await q("select status, error from ebb.tasks where id = $1", [task.id]), [{ status: "running", error: null }]);
  await assert.rejects(q("select ebb.finish_task($1, 2, 'done', null, 0, 0, 0, 0, null)", [task.id]), /finish_task\.p_status: must be success, error or stopped/);
  const logAt = [new Date(), new Date()];
  assert.deepEqual(
    await q("select ebb.finish_task($1, 2, 'success', null, 5, 5, 0, 0, '{\"k\": 1}', $2, $3, $4) as s", [task.id, logAt, ["info", "warn"], ["one", "two"]]),
    [{ s: "success" }],
  );
  assert.deepEqual(await q("select level, message from ebb.task_logs where task_id = $1 order by id", [task.id]), [
    { level: "info", message: "one" }, { level: "warn", message: "two" },
  ]);
  assert.deepEqual(await q("select status, total, details from ebb.tasks where id = $1", [task.id]), [{ status: "success", total: 5, details: { k: 1 } }]);
});
