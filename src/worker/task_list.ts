import type { Task, TaskList } from "graphile-worker";
import { isConnectionError, waitForDatabase } from "../db/database_outage.js";
import { WORKER_SCHEMA } from "../db/migrate.js";
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
  const wrap = (task: Task): Task => reportAfterOutage(ctx, completeOnlyIfStillHeld(ctx, (payload, helpers) => slots.run(() => Promise.resolve(task(payload, helpers)))));
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
 * A job that ran across a database outage may have been released meanwhile (its pool's
 * heartbeat went stale and crash recovery declared it dead) and be running again elsewhere.
 * graphile-worker 0.17 completes a job by its id alone, so this late finisher would delete
 * the job of the run that holds it now (whose task then ends "its worker job disappeared").
 * So after an outage a handler's success is passed on only while this pool still holds the
 * job; otherwise the job is failed, which graphile-worker applies only to a job this pool
 * holds: a no-op, the other run goes on. Without an outage, no extra statement.
 */
function completeOnlyIfStillHeld(ctx: AppContext, task: Task): Task {
  return async (payload, helpers) => {
    const weather = ctx.weather;
    const episodes = weather?.episodes ?? 0;
    const result = await task(payload, helpers);
    if (weather && (weather.episodes !== episodes || weather.current)) {
      const { rowCount } = await ctx.pool.query(`select 1 from ${WORKER_SCHEMA}._private_jobs where id = $1 and locked_by = $2`,
        [helpers.job.id, helpers.job.locked_by]);
      if (!rowCount) {
        ctx.logger.warn({ jobId: helpers.job.id }, "a job finished after an outage in which it was released to run again: left to that run");
        throw new Error(`job ${helpers.job.id} was released while the database was unavailable and runs again elsewhere`);
      }
    }
    return result;
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
        // the outage is logged once by the weather; without one (tests), per job
        if (!ctx.weather?.report(err, "job")) {
          ctx.logger.warn({ err: (err as Error).message, jobId: helpers.job.id }, "database unavailable: waiting for it before reporting the job's failure");
        }
        const back = await waitForDatabase(ctx.pool, { maxMs: ctx.config.shutdownTimeoutMs });
        ctx.logger.debug({ jobId: helpers.job.id, databaseBack: back }, "reporting the job's failure for a retry");
      }
      throw err;
    }
  };
}
