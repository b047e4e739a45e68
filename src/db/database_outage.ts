import type pg from "pg";

// node errors of a lost or refused connection, and PostgreSQL's "admin shutdown", "crash
// shutdown", "cannot connect now" and connection-exception class (08xxx)
const NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"]);
const PG_CODES = new Set(["57P01", "57P02", "57P03"]);

/**
 * True when `err` says the database went away (not that a statement was wrong), also when it
 * wraps such an error (graphile-worker rethrows some as a new Error whose message, or
 * `cause`, carries the original: "Error occurred whilst returning jobs ...: connect
 * ECONNREFUSED ...").
 */
export function isConnectionError(err: unknown, depth = 0): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  if (NODE_CODES.has(code) || PG_CODES.has(code) || code.startsWith("08")) return true;
  const message = typeof e?.message === "string" ? e.message : "";
  if (/Connection terminated|connection.*(closed|ended)|Client has encountered a connection error|\b(connect |read |write )?(ECONNREFUSED|ECONNRESET|EPIPE)\b|terminating connection due to (administrator command|crash of another server process)|the database system is (starting up|shutting down|in recovery mode)/i.test(message)) return true;
  return depth < 3 && e?.cause !== undefined && isConnectionError(e.cause, depth + 1);
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
