import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import type { DatabaseWeather } from "./database_weather.js";

const failFast = new AsyncLocalStorage<true>();

/**
 * Run `fn` with connects that do not wait out a refusal: HTTP requests (an API answer, a
 * scrape, /readyz) answer at once during an outage instead of hanging until it ends.
 */
export function withoutWaiting<T>(fn: () => T): T {
  return failFast.run(true, fn);
}

/**
 * A pg.Pool whose connect() waits out a refused connection (too many clients, starting up,
 * connection refused...) with the weather's backoff instead of failing: pool.query,
 * kysely and graphile-worker (fetch, complete, fail, LISTEN) all take their connections
 * through connect(), so every path waits for the database the same way. Only connecting
 * is retried (nothing was sent yet); a connection lost under a statement still fails that
 * statement, and its caller decides.
 */
class WaitingPool extends pg.Pool {
  /** refused callers waiting for one of the pool's own connections to be handed back, in order */
  private readonly line: (() => void)[] = [];

  constructor(config: pg.PoolConfig, private readonly weather: DatabaseWeather) {
    super(config);
    // pg-pool emits 'release' just before the client goes back to its idle list: the first
    // in line tries again right after and takes it
    this.on("release", () => this.line.shift()?.());
    // a new connection went through: the server takes connections again, every waiter
    // tries now instead of sleeping out its backoff
    this.on("connect", () => {
      for (const wake of this.line.splice(0)) wake();
    });
  }

  /**
   * The wait after a refusal: the backoff, or less when one of the pool's connections comes
   * back first (while the server has no slot for a new connection, the callers take turns
   * on the ones this process holds instead of all sleeping through the backoff) or a new
   * connection succeeds (the database is back).
   */
  private readonly pause = (ms: number, signal: AbortSignal): Promise<void> => {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        const i = this.line.indexOf(done);
        if (i >= 0) this.line.splice(i, 1);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.line.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  };

  // pg's overloads: connect() returns a promise, connect(callback) calls back with (err, client, release)
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: any) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: any) => void) => void): Promise<pg.PoolClient> | void {
    const connected = failFast.getStore()
      ? super.connect().then((client) => (this.weather.ok(), client), (err: unknown) => {
        this.weather.report(err, "connect");
        throw err;
      })
      : this.weather.retry("connect", () => super.connect(), this.pause);
    if (typeof callback !== "function") return connected;
    connected.then(
      (client) => callback(undefined, client, (err?: Error | boolean) => client.release(err)),
      (err: Error) => callback(err, undefined, () => {}),
    );
  }

  /** Open up to `n` connections now, without waiting on refusals; they stay as the pool's idle ones. */
  async warmUp(n: number): Promise<number> {
    const clients: pg.PoolClient[] = [];
    await Promise.all(Array.from({ length: Math.min(n, this.options.max ?? n) }, () =>
      (pg.Pool.prototype.connect as () => Promise<pg.PoolClient>).call(this).then((c: pg.PoolClient) => void clients.push(c), () => {})));
    for (const c of clients) c.release();
    return clients.length;
  }
}

/**
 * The ONE pg.Pool of an ebb process. graphile-worker (runner and worker utils), kysely and
 * ebb's own queries all take their connections from it, so `max` bounds the connections
 * this process ever holds, LISTEN included. Behind PgBouncer in transaction mode
 * (EBB_DATABASE_POOLING=transaction) these are client connections to PgBouncer, and what
 * PostgreSQL sees is PgBouncer's pool: no query of ebb may then rely on session state (no
 * named prepared statements, no session advisory locks, no SET, no LISTEN).
 *
 * With a `weather` (a running service) a refused connect waits (WaitingPool), and `min`
 * connections are kept open when idle, so a storm after a quiet hour does not first need
 * new connections from a server that may have none left; the rest close after 30 s idle so
 * processes that together exceed max_connections take turns. Without a weather (CLI
 * commands) a refusal fails at once.
 *
 * Every connection is tagged `application_name = ebb:<role>` so operators can count them:
 *   select application_name, count(*) from pg_stat_activity group by 1;
 */
export function createPool(opts: { connectionString: string; max: number; role: string; weather?: DatabaseWeather; min?: number }): pg.Pool {
  const config: pg.PoolConfig = {
    connectionString: opts.connectionString,
    max: opts.max,
    min: Math.min(opts.min ?? 0, opts.max),
    application_name: `ebb:${opts.role}`.slice(0, 63),
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 0,
  };
  const pool = opts.weather ? new WaitingPool(config, opts.weather) : new pg.Pool(config);
  // An idle client that loses its server emits 'error' on the pool; without a listener the
  // process would crash. The pool drops the broken client and opens a new one on demand.
  pool.on("error", () => {});
  // Same for a checked-out client whose server goes away between queries.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/** Open up to `n` of the pool's connections now (best effort: a refusal is not waited for). */
export async function warmUpPool(pool: pg.Pool, n: number): Promise<number> {
  return pool instanceof WaitingPool ? pool.warmUp(n) : 0;
}

/** Bigint-as-string is pg's default for int8; counts in ebb fit in a JS number. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
