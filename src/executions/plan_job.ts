import type { Task as GraphileTask } from "graphile-worker";
import { bookkeepingOptions } from "../db/bookkeeping_statement.js";
import type { AppContext } from "../service/context.js";
import { finalizeIfDone } from "./finalize.js";
import { JobNotifier } from "./job_notifier.js";
import type { PlanJobPayload } from "./jobs.js";
import { JobTableStatistics } from "./job_table_statistics.js";
import { executionFromColumns, PermanentTaskError, type Execution, type KindMap, type TaskSpec } from "./kind.js";
import { PlanStatements } from "./plan_statements.js";

export interface PlanJobOptions {
  /** tasks of one (kind, group) running at once at most, cluster-wide */
  taskGroupConcurrency: number;
}

export const DEFAULT_TASK_MAX_ATTEMPTS = 5;

/**
 * The graphile-worker task that starts an execution: pending -> running (or stopped when a
 * stop came first), then the kind's task batches, each inserted with its jobs in ONE
 * statement (ebb.plan_tasks; the jobs' NOTIFY is sent afterwards, see job_notifier.ts). Re-running it after a crash is
 * safe: task keys are unique per execution and only new ones get jobs.
 *
 * Per-group concurrency: a task with a group goes to one of `taskGroupConcurrency` named
 * graphile-worker queues of its group (`ebb:<kind>:<group>:<task id % N>`, in SQL) (jobs of a named queue run
 * one at a time), so at most that many tasks of a group (e.g. one registry) run at once,
 * however many workers there are. Global concurrency is the workers' concurrency.
 */
export function planJob(ctx: AppContext, kinds: KindMap, opts: PlanJobOptions): GraphileTask {
  // task jobs are inserted without a NOTIFY; idle workers are woken here
  const notifier = new JobNotifier(ctx.pool);
  const statistics = new JobTableStatistics(ctx.pool, (err) =>
    ctx.logger.warn({ err: (err as Error).message }, "could not analyze graphile-worker's job table after adding many jobs; autovacuum will"));
  // starts and task batches of the plan jobs running side by side go out as one statement each
  const statements = new PlanStatements(ctx.pool, bookkeepingOptions(ctx.config));
  const plan = (executionId: number, tasks: TaskSpec[], maxAttempts: number, last: boolean) =>
    statements.plan({ executionId, tasks, maxAttempts, groupSlots: opts.taskGroupConcurrency, last }).then((created) => {
      notifier.jobsAdded(created, tasks.filter((t) => t.group != null).length);
      statistics.jobsAdded(created);
      return created;
    });
  // The execution: from the payload when the enqueuer put it there (the scheduler: the first
  // ebb.plan_tasks call starts it), else read while starting it.
  const executionOf = async (executionId: number, e: PlanJobPayload["execution"]): Promise<Execution | null> => {
    if (e && typeof e.kind === "string") {
      return { id: executionId, kind: e.kind, targetId: e.targetId, scheduleId: e.scheduleId, fireTime: new Date(e.fireTime), trigger: e.trigger, dryRun: e.dryRun };
    }
    const row = await statements.start(executionId);
    if (!row) return null;
    if (row.status === "stopped") {
      await finalizeIfDone(ctx.pool, executionId); // releases a queued follower
      return null;
    }
    return executionFromColumns(row.id, row);
  };
  return async (rawPayload, helpers) => {
    const payload = rawPayload as PlanJobPayload;
    const executionId = Number(payload.executionId);
    const execution = await executionOf(executionId, payload.execution);
    if (!execution) return;
    const kind = kinds.get(execution.kind);
    try {
      if (!kind) throw new PermanentTaskError(`no execution kind named ${execution.kind} is registered in this ebb process`);
      const maxAttempts = kind.maxAttempts ?? DEFAULT_TASK_MAX_ATTEMPTS;
      // One batch behind the kind, so that the last batch also marks the planning done in the
      // same statement (ebb.plan_tasks with p_last); each call checks for a stop request first.
      let held: TaskSpec[] | undefined;
      for await (const batch of kind.planTasks(ctx, execution)) {
        if (batch.length === 0) continue;
        if (held && (await plan(execution.id, held, maxAttempts, false)) < 0) return;
        held = batch;
      }
      if (held) await plan(execution.id, held, maxAttempts, true);
      else await ctx.pool.query("select ebb.finish_planning($1)", [executionId]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const last = err instanceof PermanentTaskError || helpers.job.attempts >= helpers.job.max_attempts;
      if (!last) throw err; // retried; known task keys are skipped next time
      await ctx.pool.query("select ebb.finish_planning($1, $2)", [executionId, `planning failed: ${message}`]);
    }
  };
}
