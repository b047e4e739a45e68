import type pg from "pg";

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
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("begin");
    if (opts.wait) {
      await client.query("select pg_advisory_xact_lock($1, $2)", [EBB_LOCK_SPACE, LOCKS[lock]]);
    } else {
      const { rows } = await client.query<{ ok: boolean }>(
        "select pg_try_advisory_xact_lock($1, $2) as ok",
        [EBB_LOCK_SPACE, LOCKS[lock]],
      );
      if (!rows[0]?.ok) {
        await client.query("rollback");
        return { locked: false };
      }
    }
    const value = await fn(client);
    await client.query("commit");
    return { locked: true, value };
  } catch (err) {
    await client.query("rollback").catch((e: Error) => (broken = e));
    throw err;
  } finally {
    // A client whose rollback failed is broken: destroy it instead of returning it.
    client.release(broken);
  }
}
