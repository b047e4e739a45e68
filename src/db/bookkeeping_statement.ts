import type pg from "pg";

/**
 * The worker's bookkeeping statements (task claims and ends, plan batches) are sent thousands
 * of times a second in a midnight storm. Two settings shape them:
 *  - prepared: by name, pg prepares a statement once per connection, so PostgreSQL parses and
 *    plans it once there instead of on every call. Off behind PgBouncer in transaction mode
 *    (EBB_DATABASE_POOLING=transaction): a statement prepared on one server connection is
 *    unknown on the next.
 *  - asyncCommit (EBB_WORKER_ASYNC_COMMIT, default on): their transactions commit with
 *    synchronous_commit = off (set_config(..., true): that transaction only), so a job does
 *    not wait for the WAL flush between its claim and its end. A PostgreSQL crash loses at
 *    most the last moments of WAL, and always a suffix of it: with it the completions of the
 *    same jobs, which graphile-worker commits later, so those jobs run again, as after a crash
 *    of the worker. A dry run's decisions and a retention run's snapshot take it too (a report
 *    and planning, redone with their task or plan job); decisions of runs that delete,
 *    deletion outcomes and the catalog never do.
 *    Off: the database's own synchronous_commit (on, remote_apply, ...) is kept.
 */
export interface BookkeepingOptions {
  prepared: boolean;
  asyncCommit: boolean;
}

export type NamedStatement = string | pg.QueryConfig;

export function namedStatement(name: string, text: string, prepared: boolean): NamedStatement {
  return prepared ? { name, text } : text;
}

/**
 * The SQL expression that sets this transaction's synchronous_commit from the statement
 * parameter `param` (commitMode's value: 'off', or null = the database's own setting).
 * Used as a one-row subquery in the statement's FROM list.
 */
export function setCommitMode(param: string): string {
  return `set_config('synchronous_commit', coalesce(${param}, current_setting('synchronous_commit')), true)`;
}

/** The synchronous_commit parameter of a bookkeeping statement: 'off', or null = keep the database's. */
export function commitMode(opts: Pick<BookkeepingOptions, "asyncCommit">): "off" | null {
  return opts.asyncCommit ? "off" : null;
}

/** The options of a process: from its configuration. */
export function bookkeepingOptions(config: { databasePooling: string; workerAsyncCommit: boolean }): BookkeepingOptions {
  return { prepared: config.databasePooling !== "transaction", asyncCommit: config.workerAsyncCommit };
}
