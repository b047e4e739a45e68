import type pg from "pg";

/**
 * Run `fn` in one transaction on one client of the pool: BEGIN, COMMIT on success, ROLLBACK
 * on error (rethrown). A client whose ROLLBACK failed is broken and is destroyed instead of
 * going back to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("begin");
    const value = await fn(client);
    await client.query("commit");
    return value;
  } catch (err) {
    await client.query("rollback").catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
