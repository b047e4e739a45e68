import type pg from "pg";
import { backoffDelay, sleepUnlessAborted } from "./backoff.js";

// node errors of a lost or refused connection, and PostgreSQL's "too many connections"
// (53300: max_connections, also "remaining connection slots are reserved"), "configuration
// limit exceeded" (53400: a role's or database's connection limit), "admin shutdown", "crash
// shutdown", "cannot connect now" (57P03: starting up, in recovery) and connection-exception
// class (08xxx)
const NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
const PG_CODES = new Set(["53300", "53400", "57P01", "57P02", "57P03"]);

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
  if (/Connection terminated|connection.*(closed|ended)|Client has encountered a connection error|\b(connect |read |write )?(ECONNREFUSED|ECONNRESET|EPIPE)\b|terminating connection due to (administrator command|crash of another server process)|the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|too many clients already|remaining connection slots are reserved|too many connections for (role|database)/i.test(message)) return true;
  return depth < 3 && e?.cause !== undefined && isConnectionError(e.cause, depth + 1);
}

/**
 * The SQLSTATE (or node error code) of a connection error, also when wrapped; "unknown"
 * when neither the error nor its causes carry one.
 */
export function connectionErrorCode(err: unknown, depth = 0): string {
  const e = err as { code?: unknown; cause?: unknown } | null;
  if (typeof e?.code === "string" && e.code !== "") return e.code;
  if (depth < 3 && e?.cause !== undefined) return connectionErrorCode(e.cause, depth + 1);
  const message = err instanceof Error ? err.message : String(err);
  if (/too many clients already|remaining connection slots are reserved/i.test(message)) return "53300";
  if (/too many connections for (role|database)/i.test(message)) return "53400";
  if (/the database system is (starting up|in recovery mode|not yet accepting connections)/i.test(message)) return "57P03";
  const node = /\b(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)\b/.exec(message);
  return node ? node[1]! : "unknown";
}

/**
 * Wait until the database answers `select 1` again (retrying with backoff and jitter), at
 * most `maxMs`, or until `signal` aborts. Returns whether it answered. A pool that waits
 * through refusals itself (createPool with a weather) is raced against the deadline.
 */
export async function waitForDatabase(pool: pg.Pool, opts: { maxMs: number; signal?: AbortSignal }): Promise<boolean> {
  const end = Date.now() + opts.maxMs;
  for (let attempt = 0; ; attempt++) {
    const left = end - Date.now();
    if (left <= 0 || opts.signal?.aborted) return false;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const outcome = await Promise.race([
      pool.query("select 1").then(() => "up" as const, () => "down" as const),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.min(left, 2 ** 31 - 1)))),
      new Promise<"aborted">((resolve) => {
        onAbort = () => resolve("aborted");
        opts.signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
    if (outcome === "up") return true;
    if (outcome !== "down") return false;
    await sleepUnlessAborted(Math.min(backoffDelay(attempt), Math.max(0, end - Date.now())), opts.signal);
  }
}
