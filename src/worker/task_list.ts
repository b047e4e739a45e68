import type { TaskList } from "graphile-worker";
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
    [JOB.plan]: planJob(ctx, kinds, { taskGroupConcurrency: ctx.config.taskGroupConcurrency }),
    [JOB.task]: taskJob(ctx, kinds, { stopCheckIntervalMs: ctx.config.stopCheckIntervalMs }),
  };
}
