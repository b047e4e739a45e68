import { withTransaction } from "../db/transaction.js";
import type pg from "pg";
import { enqueuePlanJobs } from "./jobs.js";

export type ExecutionStatus = "pending" | "running" | "success" | "error" | "stopped";

/**
 * End an execution when its last task has ended. Called by every task after its own final
 * UPDATE committed (and by the planner and the reconciler), so whichever finishes last sees
 * every other task ended. Tasks never update the execution row while they run (Harbor's
 * row-lock pile-up, issues 16640/17114): the check below reads the small partial index
 * tasks_open_idx, and only the last few tasks run the aggregate and the guarded UPDATE
 * (status in pending/running: concurrent finalizers end it once).
 *
 * Status (Harbor's aggregation): any task error or a planning error -> error; else a stop
 * request or a stopped task -> stopped; else success.
 * Returns the new status, or null when the execution is not finished (or already ended).
 */
export async function finalizeIfDone(pool: pg.Pool, executionId: number): Promise<ExecutionStatus | null> {
  const { rows: open } = await pool.query<{ open: boolean; planned: boolean }>(
    `select e.planned and e.status in ('pending', 'running') as planned,
            exists (select 1 from ebb.tasks t where t.execution_id = e.id and t.status in ('pending', 'running')) as open
       from ebb.executions e where e.id = $1`,
    [executionId],
  );
  if (!open[0] || !open[0].planned || open[0].open) return null;
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ status: ExecutionStatus; schedule_id: number | null }>(
      `with agg as (
         select count(*)::int as tasks,
                count(*) filter (where status = 'error')::int as failed,
                count(*) filter (where status = 'stopped')::int as stopped,
                count(*) filter (where status in ('pending', 'running'))::int as open,
                coalesce(sum(total), 0) as total, coalesce(sum(retained), 0) as retained,
                coalesce(sum(deleted), 0) as deleted, coalesce(sum(errors), 0) as errors
           from ebb.tasks where execution_id = $1)
       update ebb.executions e
          set status = case when e.error is not null or agg.failed > 0 then 'error'
                            when e.stop_requested or agg.stopped > 0 then 'stopped'
                            else 'success' end,
              ended_at = now(), started_at = coalesce(e.started_at, now()),
              tasks_total = agg.tasks, tasks_failed = agg.failed,
              total = agg.total, retained = agg.retained, deleted = agg.deleted, errors = agg.errors
         from agg
        where e.id = $1 and e.status in ('pending', 'running') and e.planned and agg.open = 0
       returning e.status, e.schedule_id`,
      [executionId],
    );
    const ended = rows[0];
    if (ended?.schedule_id != null) await releaseQueued(client, ended.schedule_id);
    return ended?.status ?? null;
  });
}

/**
 * overlap = 'queue': when an execution of the schedule ends, the oldest one waiting behind it
 * gets its plan job (same transaction as the end of the previous one).
 */
export async function releaseQueued(client: pg.PoolClient, scheduleId: number): Promise<number | null> {
  const { rows } = await client.query<{ id: number }>(
    `select w.id from ebb.executions w
      where w.schedule_id = $1 and w.status = 'pending' and not w.enqueued
        and not exists (select 1 from ebb.executions a
                         where a.schedule_id = $1 and a.enqueued and a.status in ('pending', 'running'))
      order by w.fire_time
      limit 1
      for update skip locked`,
    [scheduleId],
  );
  const next = rows[0];
  if (!next) return null;
  await enqueuePlanJobs(client, [next.id]);
  return next.id;
}
