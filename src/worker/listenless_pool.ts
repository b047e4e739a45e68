import { EventEmitter } from "node:events";
import type pg from "pg";

/**
 * The pool graphile-worker gets when DATABASE_URL is PgBouncer in transaction mode.
 *
 * graphile-worker 0.17 takes a client for `LISTEN "jobs:insert"` from the same pgPool as
 * its jobs, with the callback form `pgPool.connect(cb)` (dist/main.js, runTaskListInternal);
 * every other use is `await pgPool.connect()`. Through PgBouncer in transaction mode that
 * LISTEN lands on whichever server connection serves the statement, which then goes back to
 * PgBouncer's pool: the worker never hears a notification, and PgBouncer logs "got packet 'A'
 * from server when not linked" for every job added while that server connection idles.
 *
 * So the callback-form connect gets a stand-in client that accepts only LISTEN/UNLISTEN and
 * never notifies: no LISTEN reaches PostgreSQL, the listener holds no pool slot, and workers
 * find jobs by polling (pollInterval). Any other query on the stand-in fails loudly, so a
 * graphile-worker that starts using the callback form for real work is noticed at once
 * (test/scaleout/transaction_pooling.test.ts).
 */
export function withoutListen(pool: pg.Pool): pg.Pool {
  function connect(callback?: (err: Error | undefined, client?: unknown, release?: () => void) => void): unknown {
    if (typeof callback !== "function") return pool.connect();
    queueMicrotask(() => callback(undefined, listenStandIn(), () => {}));
    return undefined;
  }
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === "connect") return connect;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const LISTEN_ONLY = /^\s*(UN)?LISTEN\s+"[^"]+"\s*(;\s*(UN)?LISTEN\s+"[^"]+"\s*)*;?\s*$/i;

function listenStandIn(): EventEmitter & { query(text: unknown): Promise<{ rows: never[] }>; release(): void } {
  const client = new EventEmitter();
  return Object.assign(client, {
    query(text: unknown) {
      if (typeof text === "string" && LISTEN_ONLY.test(text)) return Promise.resolve({ rows: [] as never[] });
      return Promise.reject(
        new Error(`ebb (transaction pooling): graphile-worker sent ${JSON.stringify(String(text).slice(0, 80))} on its LISTEN client; only LISTEN/UNLISTEN were expected`),
      );
    },
    release() {},
  });
}
