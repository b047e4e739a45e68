// An execution kind that does no work of its own, to measure what ebb's execution framework
// costs (schedules, execution rows, task rows, jobs, status, counts, history) without the
// retention work: each execution plans TASKS_PER_EXECUTION tasks, each task "evaluates" its
// repository in zero time and records counts. Registered in the bench database with one
// INSERT into ebb.execution_kinds (a new kind is one row).
import type { ExecutionKind } from "../../src/executions/kind.js";

export const NOOP_KIND = "bench_noop";
export const TASKS_PER_EXECUTION = 2;

export const benchNoopKind: ExecutionKind = {
  name: NOOP_KIND,
  async *planTasks(_ctx, execution) {
    // the same shape as retention: one task per repository; BENCH_NOOP_GROUP set = grouped by
    // registry as retention does (per-group concurrency through named queues)
    const group = process.env.BENCH_NOOP_GROUP ? { group: "registry:1" } : {};
    yield Array.from({ length: TASKS_PER_EXECUTION }, (_, k) => ({
      key: `proj${execution.targetId}/repo-${(execution.targetId - 1) * TASKS_PER_EXECUTION + k + 1}`,
      ...group,
    }));
  },
  async runTask(_ctx, _task, control) {
    await control.checkpoint();
    control.counts.total += 50;
    control.counts.retained += 50;
  },
};
