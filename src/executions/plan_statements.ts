import type pg from "pg";
import { coalescedById, CoalescedStatement } from "../db/coalesced_statement.js";
import { commitMode, namedStatement, setCommitMode, type BookkeepingOptions } from "../db/bookkeeping_statement.js";
import type { ExecutionColumns, TaskSpec } from "./kind.js";

export interface StartedExecution extends ExecutionColumns {
  id: number;
  status: string;
}

export interface TaskBatch {
  executionId: number;
  tasks: TaskSpec[];
  maxAttempts: number;
  /** named-queue slots per group (taskGroupConcurrency) */
  groupSlots: number;
  /** the last batch: the planning is done */
  last: boolean;
}

const START = `
  update ebb.executions
     set status = case when stop_requested then 'stopped' else 'running' end,
         started_at = coalesce(started_at, now()),
         ended_at = case when stop_requested then now() end,
         planned = planned or stop_requested
   where id = any ($1::bigint[]) and status in ('pending', 'running')
  returning id, kind, target_id, schedule_id, fire_time, trigger, dry_run, status`;

// Every batch of the call planned set-based by one function (ebb.plan_task_batches), which works
// through the executions in id order.
// $2: synchronous_commit of this statement's transaction (bookkeeping_statement.ts).
const PLAN_MANY = `
  select b.execution_id as id, b.created
    from (select ${setCommitMode("$2")}) as commit_mode,
         ebb.plan_task_batches($1::jsonb) as b`;

/**
 * The two statements of a plan job - the execution's start and each batch of its tasks
 * (ebb.plan_task_batches; ebb.plan_tasks does one batch for operators) -
 * coalesced over the plan jobs running side by side in this process (CoalescedStatement), as
 * task claims and ends are (task_statements.ts).
 */
export class PlanStatements {
  private readonly starts: CoalescedStatement<number, number, StartedExecution | null>;
  private readonly plans: CoalescedStatement<number, TaskBatch, number>;

  constructor(pool: pg.Pool, opts: BookkeepingOptions) {
    const commit = commitMode(opts);
    this.starts = coalescedById<StartedExecution>(pool, namedStatement("ebb_start_executions", START, opts.prepared));
    const planMany = namedStatement("ebb_plan_task_batches", PLAN_MANY, opts.prepared);
    // one batch alone (and each batch of a failed call) goes through the same statement
    const plan = async (batches: TaskBatch[]) =>
      (await pool.query<{ id: number; created: number }>(planMany, [JSON.stringify(batches.map((b) => ({
        execution_id: b.executionId,
        keys: b.tasks.map((t) => t.key),
        groups: b.tasks.map((t) => t.group ?? null),
        payloads: b.tasks.map((t) => t.payload ?? null),
        max_attempts: b.maxAttempts, group_slots: b.groupSlots, last: b.last,
      }))), commit])).rows;
    this.plans = new CoalescedStatement(
      async (batches) => new Map((await plan([...batches.values()])).map((r) => [Number(r.id), r.created])),
      async (b) => (await plan([b]))[0]!.created,
      (b) => b.executionId,
    );
  }

  /** pending/running -> running (or stopped when a stop came first); null when it has already ended */
  start(executionId: number): Promise<StartedExecution | null> {
    return this.starts.run(executionId);
  }

  /** one batch of tasks and their jobs; the tasks created, -1 when the execution must stop */
  plan(batch: TaskBatch): Promise<number> {
    return this.plans.run(batch);
  }
}
