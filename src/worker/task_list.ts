import type { Task, TaskList } from "graphile-worker";
import { isConnectionError, waitForDatabase } from "../db/database_outage.js";
import { JOB } from "../executions/jobs.js";
import type { KindMap } from "../executions/kind.js";
import { planJob } from "../executions/plan_job.js";
import { taskJob } from "../executions/task_job.js";
import type { AppContext } from "../service/context.js";
import type { JobSlots } from "./job_slots.js";

/** The graphile-worker tasks of the worker's two lanes (runner.ts). */
export interface LaneTaskLists {
  /** jobs fetched and completed one at a time: grouped tasks, whose named queues a batch fetch would break */
  oneByOne: TaskList;
  /** jobs fetched in batches (localQueue) and completed in batches: plan jobs, ungrouped tasks */
  batched: TaskList;
}

/**
 * Every graphile-worker task ebb runs, by identifier and lane. Executions of every kind run
 * through the generic tasks of src/executions: a task with a group (a registry) is the job
 * JOB.task in a named queue, one without is JOB.ungroupedTask - the same
 * handler. Every handler takes one of the process's job slots while it runs.
 */
export function buildTaskLists(ctx: AppContext, kinds: KindMap, slots: JobSlots): LaneTaskLists {
  const wrap = (task: Task): Task => reportAfterOutage(ctx, (payload, helpers) => slots.run(() => Promise.resolve(task(payload, helpers))));
  const runTask = wrap(taskJob(ctx, kinds, { stopCheckIntervalMs: ctx.config.stopCheckIntervalMs }));
  return {
    oneByOne: { [JOB.task]: runTask },
    batched: {
      [JOB.plan]: wrap(planJob(ctx, kinds, { taskGroupConcurrency: ctx.config.taskGroupConcurrency })),
      [JOB.ungroupedTask]: runTask,
    },
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
