import type pg from "pg";

export interface HistoryPolicy {
  /** executions kept per (kind, target) whatever their age */
  keepLast: number;
  /** executions younger than this are kept whatever their number */
  keepDays: number;
  /** executions deleted per statement (their tasks and logs go with them) */
  batchSize?: number;
}

/**
 * Delete old execution history: an execution goes only when it has ENDED, is not among the
 * newest `keepLast` of its (kind, target), and ended more than `keepDays` days ago. Pending
 * and running executions are never deleted. Works in batches (one short statement each) so
 * a large backlog never holds long locks. Returns the number of executions deleted.
 * Relies on executions_history_idx (kind, target_id, id desc) for the ranking.
 */
export async function pruneHistory(pool: pg.Pool, policy: HistoryPolicy): Promise<number> {
  const batch = policy.batchSize ?? 500;
  let deleted = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `delete from ebb.executions where id in (
         select id from (
           select id, status, ended_at,
                  row_number() over (partition by kind, target_id order by id desc) as newest
             from ebb.executions) ranked
          where status in ('success', 'error', 'stopped')
            and newest > $1
            and ended_at < now() - $2 * interval '1 day'
          limit $3)`,
      [policy.keepLast, policy.keepDays, batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return deleted;
  }
}
