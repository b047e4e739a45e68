import type pg from "pg";
import { coalescedById, CoalescedStatement } from "../db/coalesced_statement.js";
import type { Execution, TaskSpec } from "./kind.js";

export interface StartedExecution {
  id: number;
  kind: string;
  target_id: number;
  schedule_id: number | null;
  fire_time: Date;
  trigger: Execution["trigger"];
  dry_run: boolean;
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

const PLAN_ONE = "select ebb.plan_tasks($1, $2, $3, $4, $5, $6, $7) as created";

// In execution order (ordered subquery, offset 0: not flattened): a batch that ends the
// planning may finalize executions, taking their advisory locks, as ebb.finish_task batches
// do in the same order (task_statements.ts).
const PLAN_MANY = `
  select s.execution_id as id,
         ebb.plan_tasks(s.execution_id,
           array(select x.v #>> '{}' from jsonb_array_elements(s.keys) with ordinality as x(v, n) order by x.n),
           array(select x.v #>> '{}' from jsonb_array_elements(s.groups) with ordinality as x(v, n) order by x.n),
           array(select nullif(x.v, 'null'::jsonb) from jsonb_array_elements(s.payloads) with ordinality as x(v, n) order by x.n),
           s.max_attempts, s.group_slots, s.last) as created
    from (select * from jsonb_to_recordset($1::jsonb)
                 as r(execution_id bigint, keys jsonb, groups jsonb, payloads jsonb, max_attempts int, group_slots int, last boolean)
           order by execution_id offset 0) s`;

/**
 * The two statements of a plan job - the execution's start and each batch of its tasks
 * (ebb.plan_tasks, migrations 0007-0009) - coalesced over the plan jobs running side by side
 * in this process (CoalescedStatement), as task claims and ends are (task_statements.ts).
 */
export class PlanStatements {
  private readonly starts: CoalescedStatement<number, number, StartedExecution | null>;
  private readonly plans: CoalescedStatement<number, TaskBatch, number>;

  constructor(pool: pg.Pool) {
    this.starts = coalescedById<StartedExecution>(pool, START);
    this.plans = new CoalescedStatement(
      async (batches) => {
        const { rows } = await pool.query<{ id: number; created: number }>(PLAN_MANY, [JSON.stringify([...batches.values()].map((b) => ({
          execution_id: b.executionId,
          keys: b.tasks.map((t) => t.key),
          groups: b.tasks.map((t) => t.group ?? null),
          payloads: b.tasks.map((t) => t.payload ?? null),
          max_attempts: b.maxAttempts, group_slots: b.groupSlots, last: b.last,
        })))]);
        return new Map(rows.map((r) => [Number(r.id), r.created]));
      },
      async (b) => {
        const { rows } = await pool.query<{ created: number }>(PLAN_ONE, [
          b.executionId, b.tasks.map((t) => t.key), b.tasks.map((t) => t.group ?? null),
          b.tasks.map((t) => (t.payload ? JSON.stringify(t.payload) : null)), b.maxAttempts, b.groupSlots, b.last,
        ]);
        return rows[0]!.created;
      },
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
