import type { Task, TaskList } from "graphile-worker";
import { isConnectionError, waitForDatabase } from "../db/database_outage.js";
import { JOB } from "../executions/jobs.js";
import type { KindMap } from "../executions/kind.js";
import { planJob } from "../executions/plan_job.js";
import { taskJob } from "../executions/task_job.js";
import type { AppContext } from "../service/context.js";

/**
 * Every graphile-worker task ebb runs, by identifier. Each part of ebb contributes its own
 * tasks here (retention, sync, history pruning); the handlers close over the shared context.
 * Executions of every kind run through the two generic tasks of src/executions.
 */
export function buildTaskList(ctx: AppContext, kinds: KindMap = new Map()): TaskList {
  return {
    [JOB.plan]: reportAfterOutage(ctx, planJob(ctx, kinds, { taskGroupConcurrency: ctx.config.taskGroupConcurrency })),
    [JOB.task]: reportAfterOutage(ctx, taskJob(ctx, kinds, { stopCheckIntervalMs: ctx.config.stopCheckIntervalMs })),
  };
}

/**
 * A job that failed because the database went away is reported to graphile-worker only once
 * the database answers again: graphile-worker 0.17 cannot record a failure while it is down
 * (its failJobs batch rethrows connection errors) and its worker pool would die with it. The
 * job then fails normally and is retried with backoff. Waits at most the shutdown timeout.
 */
function reportAfterOutage(ctx: AppContext, task: Task): Task {
  return async (payload, helpers) => {
    try {
      return await task(payload, helpers);
    } catch (err) {
      if (isConnectionError(err)) {
        ctx.logger.warn({ err: (err as Error).message, jobId: helpers.job.id }, "database unavailable: waiting for it before reporting the job's failure");
        const back = await waitForDatabase(ctx.pool, { maxMs: ctx.config.shutdownTimeoutMs });
        ctx.logger.info({ jobId: helpers.job.id, databaseBack: back }, "reporting the job's failure for a retry");
      }
      throw err;
    }
  };
}
