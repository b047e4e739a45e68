import type pg from "pg";

// node errors of a lost or refused connection, and PostgreSQL's "admin shutdown", "crash
// shutdown", "cannot connect now" and connection-exception class (08xxx)
const NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"]);
const PG_CODES = new Set(["57P01", "57P02", "57P03"]);

/** True when `err` says the database went away (not that a statement was wrong). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  if (NODE_CODES.has(code) || PG_CODES.has(code) || code.startsWith("08")) return true;
  const message = typeof e?.message === "string" ? e.message : "";
  return /Connection terminated|connection.*(closed|ended)|Client has encountered a connection error/i.test(message);
}

/**
 * Wait until the database answers `select 1` again (polling every `everyMs`), at most
 * `maxMs`, or until `signal` aborts. Returns whether it answered.
 */
export async function waitForDatabase(pool: pg.Pool, opts: { maxMs: number; everyMs?: number; signal?: AbortSignal }): Promise<boolean> {
  const end = Date.now() + opts.maxMs;
  for (;;) {
    try {
      await pool.query("select 1");
      return true;
    } catch {
      if (Date.now() >= end || opts.signal?.aborted) return false;
      await new Promise((r) => setTimeout(r, opts.everyMs ?? 500));
    }
  }
}
