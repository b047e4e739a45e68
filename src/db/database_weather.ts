import type { Logger } from "../log/logger.js";
import { backoffDelay, DEFAULT_BACKOFF, sleepUnlessAborted, type Backoff } from "./backoff.js";
import { connectionErrorCode, isConnectionError } from "./database_outage.js";

/** An outage ends once the database served us with no refusal for this long. */
const SETTLE_MS = 2000;

/** The database refusing or dropping this process's connections, since `since`. */
export interface Outage {
  since: Date;
  /** SQLSTATE (53300, 57P03, 08006...) or node error code (ECONNREFUSED) of the latest refusal */
  sqlstate: string;
  message: string;
  /** refusals and lost connections in this episode */
  refusals: number;
  /** the path that met it first (connect, scheduler tick, heartbeat...) */
  path: string;
}

/** Waiting for the database ran past its deadline (EBB_DATABASE_WAIT_MS at startup, the shutdown timeout). */
export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
}

/** Waiting for the database was called off (a signal during startup, the process stopping). */
export class DatabaseWaitAborted extends Error {
  override name = "DatabaseWaitAborted";
}

/**
 * The database's "weather" as one ebb process sees it: a refused or lost connection (too
 * many clients, starting up, connection refused or reset) is an outage episode to wait out,
 * never a reason to exit. Every path reports to this one object: the pool's connect waits
 * here with bounded exponential backoff and jitter (createPool with a weather), periodic
 * jobs report their failures and successes. An episode is logged once when it starts and
 * once when it ends, with its SQLSTATE; /readyz, the metrics and the logs read it from here.
 */
export class DatabaseWeather {
  private outage: Outage | undefined;
  /** callers in a backoff right now: the episode is not over while any still waits */
  private waiting = 0;
  private readonly aborter = new AbortController();
  private abortReason = "";
  private deadline: { at: number; why: string } | undefined;
  /** refusals and lost connections since start, by SQLSTATE (ebb_database_refusals_total) */
  readonly refusals = new Map<string, number>();
  /** outage episodes since start */
  episodes = 0;
  private lastRefusalAt = 0;

  constructor(
    private readonly logger: Pick<Logger, "warn" | "info">,
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
  ) {}

  /** The outage under way, if any. */
  get current(): Outage | undefined {
    return this.outage;
  }

  /**
   * Waits give up at `at` (epoch ms) with DatabaseUnavailableError naming `why`; undefined =
   * wait as long as it takes (a running process). Startup sets EBB_DATABASE_WAIT_MS from its
   * beginning; a stop sets the shutdown timeout.
   */
  limitWaits(at: number | undefined, why = ""): void {
    this.deadline = at === undefined ? undefined : { at, why };
  }

  /** Every wait, under way or to come, ends now with DatabaseWaitAborted (a signal at startup). */
  abort(reason: string): void {
    this.abortReason = reason;
    this.aborter.abort();
  }

  get aborted(): boolean {
    return this.aborter.signal.aborted;
  }

  /**
   * A statement or connect failed: true when it is weather (a refused or lost connection),
   * which starts an episode or counts in the one under way; false for any other error.
   */
  report(err: unknown, path: string): boolean {
    if (!isConnectionError(err)) return false;
    const sqlstate = connectionErrorCode(err);
    const message = err instanceof Error ? err.message : String(err);
    this.refusals.set(sqlstate, (this.refusals.get(sqlstate) ?? 0) + 1);
    this.lastRefusalAt = Date.now();
    if (this.outage) {
      this.outage.refusals++;
      this.outage.sqlstate = sqlstate;
      this.outage.message = message;
      return true;
    }
    this.outage = { since: new Date(), sqlstate, message, refusals: 1, path };
    this.episodes++;
    this.logger.warn({ sqlstate, err: message, path },
      "database unavailable: waiting for it with backoff, nothing is dropped (logged once per outage)");
    return true;
  }

  /**
   * The database served a connection or statement: ends the episode unless a caller still
   * waits or the last refusal is under SETTLE_MS old (a server at its limit refuses one
   * connect and serves the next: one episode, not one per refusal).
   */
  ok(): void {
    if (!this.outage || this.waiting > 0 || Date.now() - this.lastRefusalAt < SETTLE_MS) return;
    const o = this.outage;
    this.outage = undefined;
    this.logger.info({ sqlstate: o.sqlstate, err: o.message, refusals: o.refusals, downMs: Date.now() - o.since.getTime(), path: o.path },
      "database available again");
  }

  /**
   * Run `fn` until it does not fail with a refused or lost connection, waiting between tries
   * with bounded exponential backoff and jitter; other errors are thrown at once. Only for
   * work that is safe to repeat (a connect, a statement that changes nothing or is
   * idempotent). `pause` may end a wait early (the pool wakes a waiter when one of its
   * connections is handed back).
   */
  async retry<T>(path: string, fn: () => Promise<T>, pause: (ms: number, signal: AbortSignal) => Promise<void> = sleepUnlessAborted): Promise<T> {
    let counted = false;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const value = await fn();
          if (counted) {
            counted = false;
            this.waiting--;
          }
          this.ok();
          return value;
        } catch (err) {
          if (!this.report(err, path)) throw err;
          if (!counted) {
            counted = true;
            this.waiting++;
          }
          if (this.aborted) throw new DatabaseWaitAborted(`stopped waiting for the database: ${this.abortReason}`, { cause: err });
          const delay = backoffDelay(attempt, this.backoff);
          const deadline = this.deadline;
          if (deadline && Date.now() + Math.min(delay, 100) > deadline.at) throw this.unavailable(err, deadline.why);
          await pause(deadline ? Math.min(delay, Math.max(0, deadline.at - Date.now())) : delay, this.aborter.signal);
          if (this.aborted) throw new DatabaseWaitAborted(`stopped waiting for the database: ${this.abortReason}`, { cause: err });
        }
      }
    } finally {
      if (counted) this.waiting--;
    }
  }

  private unavailable(err: unknown, why: string): DatabaseUnavailableError {
    const since = this.outage?.since.getTime() ?? Date.now();
    const message = err instanceof Error ? err.message : String(err);
    return new DatabaseUnavailableError(
      `the database refused or dropped every connection for ${Math.round((Date.now() - since) / 1000)} s (${why}): ${connectionErrorCode(err)} ${message}`,
      { cause: err },
    );
  }
}
