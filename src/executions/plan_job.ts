import { withTransaction } from "../db/transaction.js";
import type { Task as GraphileTask } from "graphile-worker";
import type pg from "pg";
import type { AppContext } from "../service/context.js";
import { finalizeIfDone } from "./finalize.js";
import { addJobs, JOB } from "./jobs.js";
import { PermanentTaskError, type Execution, type KindMap, type TaskSpec } from "./kind.js";

export interface PlanJobOptions {
  /** tasks of one (kind, group) running at once at most, cluster-wide */
  taskGroupConcurrency: number;
}

export const DEFAULT_TASK_MAX_ATTEMPTS = 5;

interface StartedRow {
  id: number;
  kind: string;
  target_id: number;
  schedule_id: number | null;
  fire_time: Date;
  trigger: Execution["trigger"];
  dry_run: boolean;
  status: string;
}

/**
 * The graphile-worker task that starts an execution: pending -> running (or stopped when a
 * stop came first), then the kind's task batches, each inserted with its jobs in ONE
 * transaction (add_jobs: one NOTIFY per batch). Re-running it after a crash is safe: task
 * keys are unique per execution and only new ones get jobs.
 *
 * Per-group concurrency: a task with a group goes to one of `taskGroupConcurrency` named
 * graphile-worker queues of its group (round-robin by task id) (jobs of a named queue run
 * one at a time), so at most that many tasks of a group (e.g. one registry) run at once,
 * however many workers there are. Global concurrency is the workers' concurrency.
 */
export function planJob(ctx: AppContext, kinds: KindMap, opts: PlanJobOptions): GraphileTask {
  return async (rawPayload, helpers) => {
    const executionId = Number((rawPayload as { executionId?: unknown }).executionId);
    const { rows } = await ctx.pool.query<StartedRow>(
      `update ebb.executions
          set status = case when stop_requested then 'stopped' else 'running' end,
              started_at = coalesce(started_at, now()),
              ended_at = case when stop_requested then now() end,
              planned = planned or stop_requested
        where id = $1 and status in ('pending', 'running')
        returning id, kind, target_id, schedule_id, fire_time, trigger, dry_run, status`,
      [executionId],
    );
    const row = rows[0];
    if (!row) return;
    if (row.status === "stopped") {
      await finalizeIfDone(ctx.pool, executionId); // releases a queued follower
      return;
    }
    const execution: Execution = {
      id: row.id, kind: row.kind, targetId: row.target_id, scheduleId: row.schedule_id,
      fireTime: row.fire_time, trigger: row.trigger, dryRun: row.dry_run,
    };
    const kind = kinds.get(row.kind);
    try {
      if (!kind) throw new PermanentTaskError(`no execution kind named ${row.kind} is registered in this ebb process`);
      const maxAttempts = kind.maxAttempts ?? DEFAULT_TASK_MAX_ATTEMPTS;
      for await (const batch of kind.planTasks(ctx, execution)) {
        const { rows: stop } = await ctx.pool.query<{ stop: boolean }>("select stop_requested as stop from ebb.executions where id = $1", [executionId]);
        if (stop[0]?.stop) break;
        await insertTasks(ctx.pool, execution, batch, maxAttempts, opts.taskGroupConcurrency);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const last = err instanceof PermanentTaskError || helpers.job.attempts >= helpers.job.max_attempts;
      if (!last) throw err; // retried; known task keys are skipped next time
      await ctx.pool.query("update ebb.executions set error = $2, planned = true where id = $1", [executionId, `planning failed: ${message}`]);
      await finalizeIfDone(ctx.pool, executionId);
      return;
    }
    await ctx.pool.query("update ebb.executions set planned = true where id = $1", [executionId]);
    await finalizeIfDone(ctx.pool, executionId);
  };
}

async function insertTasks(pool: pg.Pool, execution: Execution, batch: TaskSpec[], maxAttempts: number, groupConcurrency: number): Promise<void> {
  if (batch.length === 0) return;
  await withTransaction(pool, async (client) => {
    // tasks (execution_id, key) unique: keys planned before a crash are skipped
    const { rows: created } = await client.query<{ id: number; key: string; task_group: string | null }>(
      `insert into ebb.tasks (execution_id, key, task_group, payload)
       select $1, k, g, coalesce(p, '{}') from unnest($2::text[], $3::text[], $4::jsonb[]) as x(k, g, p)
       on conflict (execution_id, key) do nothing
       returning id, key, task_group`,
      [execution.id, batch.map((t) => t.key), batch.map((t) => t.group ?? null), batch.map((t) => (t.payload ? JSON.stringify(t.payload) : null))],
    );
    const jobs = await addJobs(client, created.map((t) => ({
      identifier: JOB.task,
      payload: { taskId: t.id },
      queueName: t.task_group === null ? null : groupQueueName(execution.kind, t.task_group, t.id, groupConcurrency),
      maxAttempts,
    })));
    await client.query(
      `update ebb.tasks t set job_id = j.job_id from unnest($1::bigint[], $2::bigint[]) as j(task_id, job_id) where t.id = j.task_id`,
      [jobs.map((j) => Number(j.payload.taskId)), jobs.map((j) => j.id)],
    );
  });
}

/** One of `slots` serial queues of a group, round-robin by task id. */
export function groupQueueName(kind: string, group: string, taskId: number, slots: number): string {
  return `ebb:${kind}:${group}:${taskId % Math.max(1, slots)}`;
}
