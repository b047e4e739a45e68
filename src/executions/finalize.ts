import type pg from "pg";

export type ExecutionStatus = "pending" | "running" | "success" | "error" | "stopped";

/**
 * End an execution when it is planned and its last task has ended: ebb.finalize_execution. Every task calls it in the transaction that ends the task (finish_task),
 * the planner when planning is done (plan_tasks/finish_planning), stop and the reconciler
 * here. Tasks never update the execution row while they run (Harbor's row-lock pile-up,
 * issues 16640/17114); finishers of one execution serialise on a transaction-level advisory
 * lock only for the end of their transaction, so the last one always sees every other task
 * ended and none is missed.
 *
 * Status (Harbor's aggregation): any task error or a planning error -> error; else a stop
 * request or a stopped task -> stopped; else success.
 * Returns the new status, or null when the execution is not finished (or already ended).
 */
export async function finalizeIfDone(pool: Pick<pg.Pool, "query">, executionId: number): Promise<ExecutionStatus | null> {
  const { rows } = await pool.query<{ status: ExecutionStatus | null }>("select ebb.finalize_execution($1) as status", [executionId]);
  return rows[0]?.status ?? null;
}

/**
 * overlap = 'queue': when an execution of the schedule ends, the oldest one waiting behind it
 * gets its plan job (ebb.release_queued, in the caller's transaction). Returns its id.
 */
export async function releaseQueued(client: Pick<pg.PoolClient, "query">, scheduleId: number): Promise<number | null> {
  const { rows } = await client.query<{ id: number | null }>("select ebb.release_queued($1) as id", [scheduleId]);
  return rows[0]?.id ?? null;
}
