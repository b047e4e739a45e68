// The stop signal a retention task checks right before each DELETE, on a REAL PostgreSQL: a stop
// committed by plain SQL aborts the task's signal through LISTEN/NOTIFY with no statement of the
// task's own; a task claimed before the LISTEN was (re)confirmed asks the database once; with
// no LISTEN the periodic check is all there is.
import assert from "node:assert/strict";
import { test } from "node:test";
import type pg from "pg";
import { StopRequested, type Execution } from "../../src/executions/kind.js";
import { stopSignalsOf, withStopListen } from "../../src/executions/stop.js";
import { TaskControlImpl } from "../../src/executions/task_control.js";
import { freshDatabase } from "../support/db.js";
import { waitFor } from "../support/wait_for.js";

const db = await freshDatabase();

/** The pool, counting the statements sent through pool.query (the task's stop checks). */
function counting(pool: pg.Pool): { pool: pg.Pool; queries: () => number } {
  let n = 0;
  const proxy = new Proxy(pool, {
    get(target, prop) {
      if (prop === "query") return (...args: unknown[]) => { n++; return (target.query as (...a: unknown[]) => unknown)(...args); };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { pool: proxy, queries: () => n };
}

/** What graphile-worker does with its LISTEN client: take it with the callback form of connect. */
function listen(pool: pg.Pool): Promise<() => void> {
  return new Promise((resolve, reject) => {
    (withStopListen(pool).connect as unknown as (cb: (err?: Error, client?: pg.PoolClient, release?: () => void) => void) => void)(
      (err, _client, release) => (err ? reject(err) : resolve(release!)),
    );
  });
}

async function execution(): Promise<{ execution: Execution; taskId: number }> {
  const [row] = (await db.pool.query("insert into ebb.executions (kind, target_id, trigger, status, started_at) values ('sync', 1, 'manual', 'running', now()) returning *")).rows;
  const [task] = (await db.pool.query("insert into ebb.tasks (execution_id, key, status) values ($1, 'k', 'running') returning id", [row.id])).rows;
  return { execution: { id: row.id, kind: "sync", targetId: 1, scheduleId: null, fireTime: row.fire_time, trigger: "manual", dryRun: false }, taskId: task.id };
}

const stop = (id: number) => db.pool.query("update ebb.executions set stop_requested = true where id = $1", [id]);

test("a stop aborts the task's signal through LISTEN, with no stop check of the task's own; after a lost LISTEN a task claimed before asks the database once", async () => {
  const { pool, queries } = counting(db.pool);
  const signals = stopSignalsOf(pool);
  const never = new AbortController().signal;
  const release = await listen(pool);
  assert.ok(signals.listeningSince !== null, "LISTEN confirmed");

  // claimed after the LISTEN: the notification is the whole story
  const a = await execution();
  const heard = new TaskControlImpl(pool, a.execution, a.taskId, 60_000, never, undefined, Date.now());
  await heard.checkpoint();
  await stop(a.execution.id);
  await waitFor("the stop heard", async () => heard.signal.aborted, 10_000, 10);
  await assert.rejects(heard.checkpoint(), (e: unknown) => e instanceof StopRequested && e.reason === "stop requested");
  assert.equal(queries(), 0, "no statement of the task's own");
  heard.close();

  // the LISTEN lost: a stop committed meanwhile is not heard; once listening again, a task
  // claimed before asks the database at its next checkpoint (not a minute later)
  const b = await execution();
  const claimedBefore = new TaskControlImpl(pool, b.execution, b.taskId, 60_000, never, undefined, Date.now());
  release();
  await waitFor("the LISTEN released", async () => signals.listeningSince === null, 10_000, 10);
  await stop(b.execution.id);
  await claimedBefore.checkpoint(); // no LISTEN: the periodic check only, not due for a minute
  assert.equal(claimedBefore.signal.aborted, false);
  const releaseAgain = await listen(pool);
  await assert.rejects(claimedBefore.checkpoint(), (e: unknown) => e instanceof StopRequested);
  assert.equal(queries(), 1, "one look at the database");
  assert.ok(claimedBefore.signal.aborted);
  claimedBefore.close();
  releaseAgain();
});
