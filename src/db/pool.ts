import pg from "pg";

/**
 * The ONE pg.Pool of an ebb process. graphile-worker (runner and worker utils), kysely and
 * ebb's own queries all take their connections from it, so `max` bounds the connections
 * this process ever holds, LISTEN included. Behind PgBouncer in transaction mode
 * (EBB_DATABASE_POOLING=transaction) these are client connections to PgBouncer, and what
 * PostgreSQL sees is PgBouncer's pool: no query of ebb may then rely on session state (no
 * named prepared statements, no session advisory locks, no SET, no LISTEN).
 *
 * Every connection is tagged `application_name = ebb:<role>` so operators can count them:
 *   select application_name, count(*) from pg_stat_activity group by 1;
 */
export function createPool(opts: { connectionString: string; max: number; role: string }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max,
    application_name: `ebb:${opts.role}`.slice(0, 63),
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 0,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener the
  // process would crash. The pool drops the broken client and opens a new one on demand.
  pool.on("error", () => {});
  // Same for a checked-out client whose server goes away between queries.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/** Bigint-as-string is pg's default for int8; counts in ebb fit in a JS number. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
