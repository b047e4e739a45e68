import type pg from "pg";
import { withTransaction } from "./transaction.js";

/**
 * Advisory lock keys used by ebb. Only transaction-level locks (pg_advisory_xact_lock) are
 * used anywhere, so they are released by COMMIT/ROLLBACK and work behind PgBouncer in
 * transaction pooling mode. Two int4 keys: (EBB_LOCK_SPACE, purpose).
 */
export const EBB_LOCK_SPACE = 0x0ebb;
export const LOCKS = {
  migrate: 1,
  schedulerTick: 2,
  recovery: 3,
} as const;

/** Run `fn` inside one transaction on one client of the pool, holding the xact lock. */
export async function withXactLock<T>(
  pool: pg.Pool,
  lock: keyof typeof LOCKS,
  fn: (client: pg.PoolClient) => Promise<T>,
  opts: { wait: boolean } = { wait: true },
): Promise<{ locked: true; value: T } | { locked: false }> {
  return withTransaction(pool, async (client) => {
    if (opts.wait) {
      await client.query("select pg_advisory_xact_lock($1, $2)", [EBB_LOCK_SPACE, LOCKS[lock]]);
    } else {
      const { rows } = await client.query<{ ok: boolean }>(
        "select pg_try_advisory_xact_lock($1, $2) as ok",
        [EBB_LOCK_SPACE, LOCKS[lock]],
      );
      // nothing was done: the empty transaction commits
      if (!rows[0]?.ok) return { locked: false as const };
    }
    return { locked: true as const, value: await fn(client) };
  });
}
