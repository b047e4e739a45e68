import type pg from "pg";

/** The callback form of pg.Pool#connect, which graphile-worker uses for its LISTEN client only (the client may be a stand-in). */
export type ConnectCallback = (err: Error | undefined, client?: unknown, release?: (err?: unknown) => void) => void;

/** The pool, except that graphile-worker's LISTEN client (callback-form connect) comes from `listen`. */
export function withListenClient(pool: pg.Pool, listen: (callback: ConnectCallback) => void): pg.Pool {
  function connect(callback?: ConnectCallback): unknown {
    if (typeof callback !== "function") return pool.connect();
    listen(callback);
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
