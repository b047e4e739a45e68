import type pg from "pg";
import { withXactLock } from "../db/advisory_locks.js";
import { WORKER_SCHEMA } from "../db/migrate.js";
import { finalizeIfDone, releaseQueued } from "./finalize.js";

export interface RecoveryResult {
  leader: boolean;
  /** worker pools declared dead; their jobs were unlocked */
  deadPools: string[];
  /** open tasks whose job is gone or gave up, now ended as error */
  lostTasks: number;
  /** open unplanned executions whose plan job is gone or gave up, now ended as error */
  lostExecutions: number;
  /** executions ended because all their tasks had ended */
  finalized: number;
  /** queued executions started because nothing of their schedule runs any more */
  released: number;
}

/**
 * Crash recovery, run periodically by every ebb process (one at a time: transaction-level
 * lock LOCKS.recovery). graphile-worker keeps a crashed process's jobs locked for 4 hours;
 * ebb instead:
 *  1. declares dead every pool whose heartbeat is older than timeoutMs, and every pool
 *     without a live heartbeat that still holds a job or queue lock older than timeoutMs,
 *     and releases their locks with force_unlock_workers: the jobs run again elsewhere
 *     (tasks are idempotent and end at most once, see task_job.ts);
 *  2. reconciles what no job will ever finish: open tasks and unplanned executions whose
 *     job disappeared or exhausted its attempts are ended as error with the job's last
 *     error; executions whose tasks have all ended are finalized; queued executions whose
 *     predecessor is gone are started.
 * Reads graphile-worker's private tables (_private_jobs, _private_job_queues: 0.17 layout).
 */
export async function recover(pool: pg.Pool, opts: { deadWorkerTimeoutMs: number }): Promise<RecoveryResult> {
  const locked = await withXactLock(pool, "recovery", async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `with live as (
         select pool_id from ebb.worker_heartbeats where last_seen_at >= now() - $1 * interval '1 millisecond')
       select pool_id as id from ebb.worker_heartbeats where pool_id not in (select pool_id from live)
       union
       select locked_by from ${WORKER_SCHEMA}._private_jobs
        where locked_by is not null and locked_at < now() - $1 * interval '1 millisecond'
          and locked_by not in (select pool_id from live)
       union
       select locked_by from ${WORKER_SCHEMA}._private_job_queues
        where locked_by is not null and locked_at < now() - $1 * interval '1 millisecond'
          and locked_by not in (select pool_id from live)`,
      [opts.deadWorkerTimeoutMs],
    );
    const dead = rows.map((r) => r.id);
    if (dead.length > 0) {
      await client.query(`select ${WORKER_SCHEMA}.force_unlock_workers($1::text[])`, [dead]);
      await client.query("delete from ebb.worker_heartbeats where pool_id = any($1::text[])", [dead]);
    }
    // Tasks no job will run again: the job is gone, or failed for good and is not running.
    const { rows: lostTasks } = await client.query<{ execution_id: number }>(
      `update ebb.tasks t
          set status = 'error', ended_at = now(),
              error = case when j.id is null then 'its worker job disappeared'
                           else format('gave up after %s attempts: %s', j.attempts, coalesce(j.last_error, 'unknown error')) end
         from ebb.tasks o
         left join ${WORKER_SCHEMA}._private_jobs j on j.id = o.job_id
        where t.id = o.id and o.status in ('pending', 'running') and o.job_id is not null
          and (j.id is null or (j.attempts >= j.max_attempts and j.locked_at is null))
       returning t.execution_id`,
    );
    const { rows: lostExecutions } = await client.query<{ id: number }>(
      `update ebb.executions e
          set error = case when j.id is null then 'planning job disappeared'
                           else format('planning gave up after %s attempts: %s', j.attempts, coalesce(j.last_error, 'unknown error')) end,
              planned = true
         from ebb.executions o
         left join ${WORKER_SCHEMA}._private_jobs j on j.id = o.plan_job_id
        where e.id = o.id and o.status in ('pending', 'running') and not o.planned and o.enqueued
          and o.plan_job_id is not null
          and (j.id is null or (j.attempts >= j.max_attempts and j.locked_at is null))
       returning e.id`,
    );
    return { dead, lostTasks: lostTasks.length, lostExecutions: lostExecutions.length };
  }, { wait: false });
  if (!locked.locked) return { leader: false, deadPools: [], lostTasks: 0, lostExecutions: 0, finalized: 0, released: 0 };

  // Outside the lock: finalizing is safe to race (guarded updates).
  let finalized = 0;
  const { rows: done } = await pool.query<{ id: number }>(
    `select e.id from ebb.executions e
      where e.status in ('pending', 'running') and e.planned
        and not exists (select 1 from ebb.tasks t where t.execution_id = e.id and t.status in ('pending', 'running'))
      limit 1000`,
  );
  for (const { id } of done) if (await finalizeIfDone(pool, id)) finalized++;
  let released = 0;
  const { rows: waiting } = await pool.query<{ schedule_id: number }>(
    `select distinct schedule_id from ebb.executions
      where status = 'pending' and not enqueued and schedule_id is not null limit 1000`,
  );
  for (const { schedule_id } of waiting) {
    if (await releaseQueued(pool, schedule_id)) released++;
  }
  return { leader: true, deadPools: locked.value.dead, lostTasks: locked.value.lostTasks, lostExecutions: locked.value.lostExecutions, finalized, released };
}
