import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { PermanentTaskError, type ExecutionKind } from "../../src/executions/kind.js";

/**
 * A test-only execution kind, `test_sleep`, driven by rows of public.test_kind_targets:
 *   tasks     number of tasks planned (default 1), in batches of `batch` (default 100)
 *   task_group   concurrency group of every task (default none)
 *   sleep_ms  how long each task works, in 50 ms steps with a stop checkpoint after each
 *   fail      'permanent:<key>' fails that task for good; 'transient:<key>' fails its first attempt
 * Each task records its start in public.test_task_starts and its completion (just before
 * returning) in public.test_task_runs, so a test can count runs to completion per task.
 */
export const TEST_KIND_SQL = `
insert into ebb.execution_kinds (name) values ('test_sleep') on conflict do nothing;
create table if not exists public.test_kind_targets (
  target_id bigint primary key, tasks int not null default 1, batch int not null default 100,
  task_group text, sleep_ms int not null default 0, fail text);
create table if not exists public.test_task_starts (
  task_id bigint, attempt int, pid int, at timestamptz default clock_timestamp());
create table if not exists public.test_task_runs (
  task_id bigint, execution_id bigint, key text, attempt int, pid int,
  started_at timestamptz, at timestamptz default clock_timestamp());`;

export async function installTestKind(pool: pg.Pool): Promise<void> {
  await pool.query(TEST_KIND_SQL);
}

interface Target { tasks: number; batch: number; task_group: string | null; sleep_ms: number; fail: string | null }

async function target(pool: pg.Pool, id: number): Promise<Target> {
  const { rows } = await pool.query<Target>("select tasks, batch, task_group, sleep_ms, fail from public.test_kind_targets where target_id = $1", [id]);
  return rows[0] ?? { tasks: 1, batch: 100, task_group: null, sleep_ms: 0, fail: null };
}

export const testSleepKind: ExecutionKind = {
  name: "test_sleep",
  maxAttempts: 3,
  async *planTasks(ctx, execution) {
    const t = await target(ctx.pool, execution.targetId);
    for (let i = 0; i < t.tasks; i += t.batch) {
      const batch = [];
      for (let k = i; k < Math.min(t.tasks, i + t.batch); k++) batch.push({ key: `task-${k}`, group: t.task_group ?? undefined, payload: { n: k } });
      yield batch;
    }
  },
  async runTask(ctx, task, control) {
    const t = await target(ctx.pool, control.execution.targetId);
    const started = new Date();
    await ctx.pool.query("insert into public.test_task_starts (task_id, attempt, pid) values ($1, $2, $3)", [task.id, task.attempt, process.pid]);
    control.log("info", `start ${task.key} attempt ${task.attempt} pid ${process.pid}`);
    if (t.fail === `permanent:${task.key}`) throw new PermanentTaskError(`${task.key} cannot be processed`);
    if (t.fail === `transient:${task.key}` && task.attempt === 1) throw new Error(`${task.key} flaked`);
    let left = t.sleep_ms;
    while (left > 0) {
      const step = Math.min(50, left);
      await sleep(step);
      left -= step;
      control.counts.total++;
      await control.checkpoint();
    }
    control.counts.retained = 1;
    control.counts.deleted = 2;
    control.details.pid = process.pid;
    control.log("info", `done ${task.key}`);
    await ctx.pool.query(
      "insert into public.test_task_runs (task_id, execution_id, key, attempt, pid, started_at) values ($1, $2, $3, $4, $5, $6)",
      [task.id, task.executionId, task.key, task.attempt, process.pid, started],
    );
  },
};
