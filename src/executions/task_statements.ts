import type pg from "pg";
import { coalescedById, CoalescedStatement } from "../db/coalesced_statement.js";
import { commitMode, namedStatement, setCommitMode, type BookkeepingOptions } from "../db/bookkeeping_statement.js";
import type { ExecutionColumns, TaskCounts } from "./kind.js";
import type { LogLine } from "./task_control.js";

/** The claimed task row with its execution's columns. */
export interface ClaimedTask extends ExecutionColumns {
  id: number;
  execution_id: number;
  key: string;
  task_group: string | null;
  payload: Record<string, unknown>;
  attempts: number;
  stop_requested: boolean;
}

export interface TaskEnd extends TaskCounts {
  taskId: number;
  executionId: number;
  attempt: number;
  status: "success" | "error" | "stopped";
  error: string | null;
  details: Record<string, unknown> | null;
  lines: LogLine[];
}

// $2: synchronous_commit of this statement's transaction ('off': see commitMode below)
const CLAIM = `
  with commit_mode as materialized (select ${setCommitMode("$2")})
  update ebb.tasks t
     set status = 'running', attempts = t.attempts + 1, started_at = coalesce(t.started_at, now())
    from ebb.executions e, commit_mode
   where t.id = any ($1::bigint[]) and e.id = t.execution_id and t.status in ('pending', 'running')
  returning t.id, t.execution_id, t.key, t.task_group, t.payload, t.attempts,
            e.kind, e.target_id, e.schedule_id, e.fire_time, e.trigger, e.dry_run, e.stop_requested`;

// Ends in execution order: each ebb.finish_task takes its execution's advisory lock until the
// commit, so two batches over the same executions take them in the same order (no deadlock).
// The ordered subquery (offset 0: not flattened) fixes the order the calls are made in.
// $2: synchronous_commit of this statement's transaction (see commitMode below).
const FINISH_MANY = `
  select ebb.finish_task(s.id, s.attempt, s.status, s.error, s.total, s.retained, s.deleted, s.errors, s.details,
           array(select (l.v ->> 'at')::timestamptz from jsonb_array_elements(s.lines) with ordinality as l(v, n) order by l.n),
           array(select l.v ->> 'level' from jsonb_array_elements(s.lines) with ordinality as l(v, n) order by l.n),
           array(select l.v ->> 'message' from jsonb_array_elements(s.lines) with ordinality as l(v, n) order by l.n))
    from (select * from jsonb_to_recordset($1::jsonb)
                 as x(id bigint, execution_id bigint, attempt int, status text, error text, total int, retained int,
                      deleted int, errors int, details jsonb, lines jsonb)
           order by execution_id, id offset 0) s,
         (select ${setCommitMode("$2")}) as commit_mode`;

/**
 * The two statements every task job makes - its claim and its end (ebb.finish_task) - each
 * coalesced over the jobs running side by side in this process (CoalescedStatement): jobs of
 * the batched lane are handed out together, so their claims and ends arrive together. A
 * claim is the same guarded UPDATE per task; an end the same ebb.finish_task call per task.
 */
export class TaskStatements {
  private readonly claims: CoalescedStatement<number, number, ClaimedTask | null>;
  private readonly ends: CoalescedStatement<number, TaskEnd, void>;

  constructor(pool: pg.Pool, opts: BookkeepingOptions) {
    const commit = commitMode(opts);
    this.claims = coalescedById<ClaimedTask>(pool, namedStatement("ebb_claim_tasks", CLAIM, opts.prepared), [commit]);
    const finishMany = namedStatement("ebb_finish_tasks", FINISH_MANY, opts.prepared);
    // one end alone (the common case outside a storm, and each end of a failed batch) goes
    // through the same statement: one encoding of an end
    const finish = async (ends: TaskEnd[]): Promise<void> => {
      await pool.query(finishMany, [JSON.stringify(ends.map((e) => ({
        id: e.taskId, execution_id: e.executionId, attempt: e.attempt, status: e.status, error: e.error,
        total: e.total, retained: e.retained, deleted: e.deleted, errors: e.errors, details: e.details,
        lines: e.lines.map((l) => ({ at: l.at.toISOString(), level: l.level, message: l.message })),
      }))), commit]);
    };
    this.ends = new CoalescedStatement(
      async (ends) => {
        await finish([...ends.values()]);
        return new Map([...ends.keys()].map((k) => [k, undefined]));
      },
      (e) => finish([e]),
      (e) => e.taskId,
    );
  }

  /** pending/running -> running, attempts + 1; null when the task has already ended */
  claim(taskId: number): Promise<ClaimedTask | null> {
    return this.claims.run(taskId);
  }

  /** the task's end: status, counts, details, last log lines, and its execution's end when it was the last */
  finish(end: TaskEnd): Promise<void> {
    return this.ends.run(end);
  }
}
